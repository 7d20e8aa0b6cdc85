"""Sales: quotes, sales orders and shipments."""
