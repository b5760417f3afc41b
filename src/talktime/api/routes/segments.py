"""`POST /v1/sms/segments`: the segment calculator over HTTP (no account, no database)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from talktime.api.models import text_at_most, text_schema
from talktime.sms import segment

router = APIRouter(prefix="/v1/sms", tags=["sms"])

MAX_TEXT = 100_000


MessageText = Annotated[
    Any, AfterValidator(text_at_most(MAX_TEXT)), text_schema(MAX_TEXT, "The message.")
]


class SegmentsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: MessageText
    smart_encoding: StrictBool = Field(
        False, description="Replace Unicode look-alikes with GSM-7 characters when that helps."
    )
    language: Literal["tr", "es", "pt"] | None = Field(
        None, description="Allow this national language's shift tables (TS 23.038 §6.2.1)."
    )
    split: Literal["grapheme", "code_point"] = Field(
        "grapheme",
        description="grapheme: never split a user-perceived character; "
        "code_point: strict TS 23.040.",
    )


class Segments(BaseModel):
    encoding: Literal["GSM-7", "UCS-2"]
    segments: int = Field(description="Number of message parts: the billing unit.")
    units: int = Field(description="Septets (GSM-7) or UTF-16 code units (UCS-2).")
    parts: list[str] = Field(description="Each part's text exactly as sent.")
    part_units: list[int]
    non_gsm: list[str] = Field(description="Distinct characters that forced UCS-2.")
    text: str = Field(
        description="The text sent (differs from the input only with smart encoding)."
    )
    replacements: list[tuple[str, str]] = Field(description="What smart encoding replaced.")
    remaining: int = Field(description="Units left in the last part.")
    part_capacity: int = Field(description="Units one part holds for this message.")
    locking_shift: Literal["tr", "es", "pt"] | None
    single_shift: Literal["tr", "es", "pt"] | None
    language: Literal["tr", "es", "pt"] | None


@router.post("/segments", response_model=Segments)
def count_segments(body: SegmentsRequest) -> Segments:
    """How a message is sent: encoding, segments and each part (422 `invalid_text` for a lone
    surrogate)."""
    result = segment(
        body.text, smart_encoding=body.smart_encoding, language=body.language, split=body.split
    )
    return Segments.model_validate(result.to_dict())
