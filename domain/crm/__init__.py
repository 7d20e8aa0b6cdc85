"""The CRM front door: leads, parties (customers), opportunities and activities."""
