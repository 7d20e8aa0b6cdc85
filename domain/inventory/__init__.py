"""Inventory: products, warehouses, stock per product and warehouse valued FIFO, receipts."""
