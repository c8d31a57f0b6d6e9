"""Customer pages: list, create, edit, their invoices."""
