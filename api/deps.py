"""Dependencies: the one KnowledgeService of the process (built in the app's lifespan) and the settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from spinekg.api.settings import Settings
from spinekg.kg.service import KnowledgeService


def get_service(request: Request) -> KnowledgeService:
    service: KnowledgeService = request.app.state.service
    return service


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ServiceDep = Annotated[KnowledgeService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
