"""Switchboard service: FastAPI app, persistence, websockets, pages (composition root)."""
