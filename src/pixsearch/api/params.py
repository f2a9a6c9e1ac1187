"""Request parameters shared by the REST routes: validated at the edge so bad input is a 422, never a 500."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import File, Path, Query, UploadFile
from pydantic import BaseModel, Field

from pixsearch.api.errors import ApiError

__all__ = ["MAX_ID", "MAX_K", "MAX_OFFSET", "PhotoId", "K", "Offset", "Region", "Threshold", "Upload"]
__all__ += [
    "ComposedQuery",
    "QueryTerm",
    "After",
    "Before",
    "Camera",
    "Folder",
    "Near",
    "Place",
    "SearchText",
    "Sort",
    "read_upload",
]

MAX_ID = 2**63 - 1  # SQLite's integer range: larger ids cannot exist (and would overflow the driver)
# A page's bounds at the API (a query parameter or a form field): the Library checks k >= 1, offset >= 0
# itself; the API also caps them, so one request cannot ask for an unbounded amount of work.
MAX_K = 100
MAX_OFFSET = 10_000
MAX_UPLOAD_B64 = 28 * 2**20  # a composed query's uploaded photo, base64: 20 MiB of bytes and its overhead

PhotoId = Annotated[int, Path(ge=1, le=MAX_ID, description="Catalog id of the photo.")]
K = Annotated[int, Query(ge=1, le=MAX_K, description="Number of results.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results to skip (paging).")]
Region = Annotated[
    str | None,
    Query(
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        description="Content-policy region (default, restricted, ...); the server's when omitted. Only a "
        "region at least as strict as the server's may be asked for: another is 403 region_not_allowed.",
    ),
]
Threshold = Annotated[
    float | None,
    Query(ge=0.0, le=1.0, allow_inf_nan=False, description="Drop results whose match is below."),
]
# Search filters (search/filters.py parses them; a bad value is a QueryError, 422)
SearchText = Annotated[
    str | None,
    Query(min_length=1, max_length=500, description="Words to look for; none: browse the filtered photos."),
]
After = Annotated[str | None, Query(max_length=40, description="Taken in or after: 2024, 2024-05.")]
Before = Annotated[str | None, Query(max_length=40, description="Taken before this period starts.")]
Camera = Annotated[str | None, Query(max_length=100, description="Camera make or model contains this.")]
Folder = Annotated[str | None, Query(max_length=1000, description="Below this folder of an indexed one.")]
Near = Annotated[str | None, Query(max_length=80, description="LAT,LON[,KM]: within KM (default 5).")]
Place = Annotated[str | None, Query(max_length=100, description="Taken in or near this town or country.")]
Sort = Annotated[
    Literal["relevance", "date", "-date"] | None,
    Query(description="relevance (with q; the default), date (oldest first), -date (newest first)."),
]


class QueryTerm(BaseModel):
    """One term of a composed query: words, a library photo's id, or a photo's bytes (base64; not
    stored), and its weight (negative: less like it)."""

    text: str | None = Field(None, min_length=1, max_length=500)
    photo_id: int | None = Field(None, ge=1, le=MAX_ID)
    upload: str | None = Field(None, min_length=4, max_length=MAX_UPLOAD_B64)
    weight: float = Field(1.0, ge=-10.0, le=10.0, allow_inf_nan=False)


class ComposedQuery(BaseModel):
    """``POST /api/search``: terms added and taken away in the joint space, with the GET's filters."""

    terms: list[QueryTerm] = Field(min_length=1, max_length=16)
    k: int = Field(24, ge=1, le=MAX_K)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    after: str | None = Field(None, max_length=40)
    before: str | None = Field(None, max_length=40)
    camera: str | None = Field(None, max_length=100)
    folder: str | None = Field(None, max_length=1000)
    near: str | None = Field(None, max_length=80)
    place: str | None = Field(None, max_length=100)


Upload = Annotated[UploadFile, File(description="A photo (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC).")]


async def read_upload(file: UploadFile, limit: int) -> bytes:
    """The upload's bytes; 413 past ``limit`` (read at most limit + 1 bytes), 422 when empty."""
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "too_large", f"upload is over the {limit // 2**20} MiB limit")
    if not data:
        raise ApiError(422, "bad_image", "the uploaded file is empty")
    return data
