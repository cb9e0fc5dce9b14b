"""The API's request and response models; responses follow the shipped JSON Schema of an analysis."""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from propscan.outputs.formats import WRITERS
from propscan.pipeline.model import NAMES
from propscan.techniques import TECHNIQUE_IDS, resolve

MAX_ID = 256


TechniqueId = Literal[TECHNIQUE_IDS]  # type: ignore[valid-type]
ReportFormat = Literal[tuple(WRITERS)]  # type: ignore[valid-type]  # formats.WRITERS: one registry for CLI and API
ModelName = Literal[tuple(NAMES)]  # type: ignore[valid-type]  # fast, accurate


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # optional, not nullable: no "default": null in the OpenAPI schema


Threshold = Annotated[
    float,
    Field(ge=0, le=1, allow_inf_nan=False, json_schema_extra=_no_default,
          description="The minimum confidence (a calibrated probability, 0..1) for every technique instead of the "
          "cutoffs tuned per technique: lower finds more spans, higher fewer."),
]


def _check_text(value: str | None, what: str) -> str | None:
    if value is None:
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the {what} holds an unpaired surrogate (\\ud800-\\udfff escape); not valid Unicode") from None
    if not value.strip():
        raise ValueError(f"the {what} is empty")
    return value


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: Threshold = None  # type: ignore[assignment]
    threshold_for: dict[TechniqueId, Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]] = Field(  # type: ignore[valid-type]
        None, json_schema_extra=_no_default,
        description="Minimum confidences for single techniques, e.g. {\"Slogans\": 0.2}; they replace the default "
        "(tuned, or threshold) for those techniques.",
    )
    techniques: list[TechniqueId] = Field(  # type: ignore[valid-type]
        None, min_length=1, max_length=4 * len(TECHNIQUE_IDS), json_schema_extra=_no_default,
        description="Keep only spans of these techniques (ids as in GET /v1/techniques); the article score "
        "and counts then count only these.",
    )
    clean: bool = Field(True, description="Remove scraping debris (share footers, repeated teasers...) before analysis.")
    model: ModelName = Field(
        None, json_schema_extra=_no_default,
        description="fast (MiniLM) or accurate (MPNet, where the server has it installed: see GET /v1/models); "
        "default: the server's model (fast unless started with --model).",
    )

    @field_validator("threshold_for", mode="before")
    @classmethod
    def _technique_names(cls, value: Any) -> Any:
        """Display names and aliases are accepted as keys, as on the command line."""
        if not isinstance(value, dict):
            return value
        try:
            return {resolve(str(k)): v for k, v in value.items()}
        except ValueError as e:
            raise ValueError(str(e)) from None


def checked_options(body: Options) -> Options:
    """The options part of an (already validated) request."""
    return Options.model_construct(threshold=body.threshold, threshold_for=body.threshold_for,
                                   techniques=body.techniques, clean=body.clean, model=body.model)


class DocumentIn(BaseModel):
    """One document: exactly one of ``text`` (plain text, analysed as given), ``html`` (a page; its main
    text is extracted as ``propscan analyze`` does for .html files) or ``url`` (a public web page, fetched
    by the server only when it runs with --allow-fetch)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["text"]}, {"required": ["html"]}, {"required": ["url"]}]},
    )

    id: str = Field(None, min_length=1, max_length=MAX_ID, json_schema_extra=_no_default,
                    description="Your id for the document, returned in document.id.")
    text: str = Field(None, json_schema_extra=_no_default, description="Plain text; offsets refer to it.")
    html: str = Field(None, json_schema_extra=_no_default, description="An HTML page; offsets refer to the extracted text.")
    url: str = Field(None, min_length=1, max_length=2048, json_schema_extra=_no_default,
                     description="An http(s) link to a public page, fetched and read like html (needs --allow-fetch).")

    @field_validator("text")
    @classmethod
    def _text_ok(cls, v: str | None) -> str | None:
        return _check_text(v, "text")

    @field_validator("html")
    @classmethod
    def _html_ok(cls, v: str | None) -> str | None:
        return _check_text(v, "html")

    @model_validator(mode="after")
    def _one_input(self) -> DocumentIn:
        if sum(x is not None for x in (self.text, self.html, self.url)) != 1:
            raise ValueError("give exactly one of text, html or url")
        return self


class AnalyzeRequest(DocumentIn, Options):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["text"]}, {"required": ["html"]}, {"required": ["url"]}]},
    )


def batch_request_model(max_docs: int) -> type[BaseModel]:
    class BatchRequest(Options):
        documents: list[DocumentIn] = Field(
            ..., min_length=1, max_length=max_docs, description=f"1 to {max_docs} documents (--max-docs)."
        )

    return BatchRequest


Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Offset = Annotated[int, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvidenceIn(_Strict):
    start: Offset
    end: Offset
    weight: Probability


class RemovedIn(_Strict):
    kind: str
    start: Offset
    end: Offset
    reason: str


class SpanIn(_Strict):
    start: Offset
    end: Offset
    technique: TechniqueId  # type: ignore[valid-type]
    score: Probability
    text: str
    alternatives: dict[TechniqueId, Probability]  # type: ignore[valid-type]
    evidence: list[EvidenceIn] = Field(default_factory=list)  # 1.2; older analyses have none


class SentenceIn(_Strict):
    start: Offset
    end: Offset
    score: Probability


class ModelIn(_Strict):
    name: str
    version: str


class DocumentOut(_Strict):
    id: str
    text: str
    metadata: dict[str, Any]


class AnalysisIn(_Strict):
    """An analysis as returned by POST /v1/analyze (schema_version 1.2; 1.0 and 1.1 are read too)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["https://propscan.invalid/schema/analysis/1.0", "https://propscan.invalid/schema/analysis/1.1",
                     "https://propscan.invalid/schema/analysis/1.2"] = Field(alias="schema")
    schema_version: Literal["1.0", "1.1", "1.2"]
    model: ModelIn
    document: DocumentOut
    score: Probability
    threshold: Probability | None
    threshold_for: dict[TechniqueId, Probability] = Field(default_factory=dict)  # type: ignore[valid-type]
    passages: Annotated[int, Field(ge=0)] | None = None
    language: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)
    removed: list[RemovedIn] = Field(default_factory=list)
    counts: dict[TechniqueId, Annotated[int, Field(ge=1)]]  # type: ignore[valid-type]
    spans: list[SpanIn]
    sentences: list[SentenceIn]


def analysis_components() -> dict[str, Any]:
    """The shipped JSON Schema (analysis.schema.json) as OpenAPI components: the single source of truth
    for the response, its ``$defs`` hoisted to ``Analysis<Name>`` so the references resolve."""
    schema = json.loads(resources.files("propscan").joinpath("schema/analysis.schema.json").read_text("utf-8"))
    defs = schema.pop("$defs", {})
    schema.pop("$schema", None)
    schema.pop("$id", None)  # an $id would change the base the component references resolve against
    names = {k: "Analysis" + k[0].upper() + k[1:] for k in defs}

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: ("#/components/schemas/" + names[v.rsplit("/", 1)[1]] if k == "$ref" and v.startswith("#/$defs/") else fix(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [fix(x) for x in node]
        return node

    out = {"Analysis": fix(schema)}
    out.update({names[k]: fix(v) for k, v in defs.items()})
    return out
