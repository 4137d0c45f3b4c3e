"""REST API v1: thin routers over keyword-only service functions (mounted at ``/api/v1``)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import auth, calls, config, crm

api_router = APIRouter()
api_router.include_router(auth.router)
api_router.include_router(config.router)
api_router.include_router(crm.router)
api_router.include_router(calls.router)

__all__ = ["api_router"]
