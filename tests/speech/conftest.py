"""The speech tests share the model folder `make install` assembles and one loaded model per
test session: assembling is a 145 MB copy and loading takes seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import Settings
from speech.model import load_model
from speech.transcribe import Transcriber
from tests.speech_model import link_assembled_model


@pytest.fixture(scope="session")
def speech_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with the bundled model (assembled on first load) and language detection."""
    data_dir = tmp_path_factory.mktemp("speech-data")
    settings = Settings.from_env(
        {"WECRM_DATA_DIR": str(data_dir), "WECRM_WHISPER_LANGUAGE": "auto"}
    )
    link_assembled_model(settings.bundled_model_dir)
    return settings


@pytest.fixture(scope="session")
def whisper_model(speech_settings: Settings):  # type: ignore[no-untyped-def]
    return load_model(speech_settings)


@pytest.fixture(scope="session")
def model_dir(speech_settings: Settings, whisper_model: object) -> Path:
    """The bundled model's folder, verified by `load_model`."""
    return speech_settings.bundled_model_dir


@pytest.fixture(scope="session")
def detecting(whisper_model) -> Transcriber:  # type: ignore[no-untyped-def]
    """A Transcriber that lets Whisper detect the language (the test speech is English)."""
    return Transcriber(whisper_model, language=None)


@pytest.fixture(scope="session")
def chinese(whisper_model) -> Transcriber:  # type: ignore[no-untyped-def]
    """A Transcriber with the production default: Chinese."""
    return Transcriber(whisper_model)


@pytest.fixture(scope="session")
def english(whisper_model) -> Transcriber:  # type: ignore[no-untyped-def]
    """A Transcriber told the speech is English: half the time of detecting it."""
    return Transcriber(whisper_model, language="en")
