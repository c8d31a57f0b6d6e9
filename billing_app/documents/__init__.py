"""Printable invoices: the print page, its PDF, and the stored document as issued."""
