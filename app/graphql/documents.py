"""Documents that passed validation, kept per process, so a client's operations are parsed and
validated once rather than on every request.

Hand-written because Strawberry's ParserCache and ValidationCache keep every document that
parses, the refused ones included, whatever their size: an anonymous client sending distinct
documents at the token budget filled them with hundreds of megabytes, and each refusal was
validated again. Here only a document that validated, and is short (MAX_TEXT characters: the
clients' own operations), is kept; the rules are the schema's, the same on every operation."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator

from graphql import DocumentNode
from strawberry.extensions import SchemaExtension

MAX_TEXT = 4096  # characters of a document kept
MAX_DOCUMENTS = 256


class ValidDocuments:
    """A bounded map of document text to its parsed and validated document, least recently used
    out first; shared by the threads of a process."""

    def __init__(self, size: int = MAX_DOCUMENTS) -> None:
        self._size = size
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> DocumentNode | None:
        with self._lock:
            document = self._documents.get(text)
            if document is not None:
                self._documents.move_to_end(text)
            return document

    def put(self, text: str, document: DocumentNode) -> None:
        if len(text) > MAX_TEXT:
            return
        with self._lock:
            self._documents[text] = document
            self._documents.move_to_end(text)
            while len(self._documents) > self._size:
                self._documents.popitem(last=False)


class DocumentCache(SchemaExtension):
    """A kept document skips parsing and validation; one that validates is kept."""

    def __init__(self, *, documents: ValidDocuments) -> None:
        self.documents = documents
        self.kept: DocumentNode | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        self.kept = self.documents.get(context.query) if context.query else None
        if self.kept is not None:
            context.graphql_document = self.kept  # Strawberry parses only when it has none
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self.kept is not None:
            context.pre_execution_errors = []  # validated with these rules when it was kept
        yield
        query, document = context.query, context.graphql_document
        if self.kept is None and query and document is not None and not context.pre_execution_errors:
            self.documents.put(query, document)
