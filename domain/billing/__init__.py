"""Billing: sales invoices, customer payments, and each customer's open items."""
