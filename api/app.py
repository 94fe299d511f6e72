"""A minimal FastAPI service: POST /v1/check and GET /healthz. The production service grows from here."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ..engine import Decision, Engine, EngineError, RequestError, TransferRequest
from ..rules import load_ruleset


def create_app(rules_dir: Optional[Path] = None) -> FastAPI:
    engine = Engine(load_ruleset(rules_dir))
    app = FastAPI(title="dfft", version="1", description="Pre-transfer checks for cross-border data flows")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "ruleset": engine.ref.model_dump()}

    @app.post("/v1/check", response_model=Decision)
    def check(request: TransferRequest):
        try:
            return engine.check(request)
        except RequestError as e:
            return JSONResponse({"type": "about:blank", "title": "Invalid transfer request", "status": 422,
                                 "detail": str(e), "errors": e.errors}, status_code=422,
                                media_type="application/problem+json")
        except EngineError as e:
            return JSONResponse({"type": "about:blank", "title": "Internal error: no verdict", "status": 500,
                                 "detail": "the engine failed; treat the transfer as not allowed"}, status_code=500,
                                media_type="application/problem+json")

    return app
