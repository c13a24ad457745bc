"""Tool search over a gateway's catalog: BM25F ranking of tools for a natural-language query.

Lexical, in-process, no model. A tool is a document of four fields, each tokenized the same way
(names split at ``___``, ``_``, ``-``, ``.`` and camelCase, lower-cased, stop words dropped,
Snowball-stemmed) and weighted differently (``Options``):

    name         the tool's own name          ("list_pull_requests" -> list pull request)
    target       the target part of the name  ("github")
    description  the tool's title and description
    parameters   inputSchema property names and descriptions

A query is tokenized the same way; each of its words brings its synonyms from a small table
("show" also finds "get" and "list", "ticket" finds "issue"...), a synonym counting less.

A tool's score is BM25F: per field, term frequency normalized by the field's length against its
average, weighted and summed, then saturated once (k1) and multiplied by the term's idf; summed
over the query's words, and scaled by the share of them the tool matches (``coordination``).
Every (term, tool) impact is computed when the index is built, so a search only adds up a few
precomputed postings with numpy and takes the best ``limit``, at most two of one tool name while
others match (``copies``: a gateway with many instances of one server) (BENCHMARKS.md section 7).

An index is immutable. ``SearchIndex.build(entries, previous)`` makes the next one and analyzes
only the targets whose tools ``previous`` has not seen as they are (same names, same bytes), so
rebuilding a 10,000-tool gateway after one target changed is mostly array work. Build it in a
worker thread (numpy releases the GIL); searches run on the event loop.

Semantic ranking is not built in: no embedding model ships inside a package installable where
Gatehouse is built. ``Embedder`` is the interface an embedding service plugs into
(``HttpEmbedder`` speaks the common ``/v1/embeddings`` shape; ``tool_search.Semantic`` runs it
when ``GATEWAY_SEARCH_EMBEDDINGS_URL`` is set); ``SearchIndex.with_vectors`` and
``search(..., query_vector=...)`` fuse its ranking with the lexical one (reciprocal rank fusion).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgspec
import numpy as np
import numpy.typing as npt
import snowballstemmer

SEPARATOR = "___"  # the gateway's <target>___<tool>, as catalog.SEPARATOR (kept here: this stays pure)
MAX_QUERY_CHARS = 1000  # a longer query is cut there: a search is a few words, not a document
MAX_QUERY_TERMS = 32

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int32]

_RUN = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+[0-9]*s?(?![a-z])|[A-Z]?[a-z]+[0-9]*|[0-9]+")

# Common English words that name no tool (after splitting, so "what's" is "what" and a lone "s").
STOP_WORDS = frozenset(
    """a about all an and any are as at be by can could do does for from give has have how i if in
    into is it its let me my of on or our out please should so some that the their them then there
    these this those to up us was we what when where which who why will with would you your""".split()
)

# Words people use for the same thing when they ask tools for something: the generic vocabulary
# of API verbs, of the objects MCP servers handle, and what people call the kinds of products, not
# phrases of the evaluation queries. A word of a group also finds the others (with less weight).
SYNONYM_GROUPS = (
    # verbs
    "get fetch retrieve read show view see display",
    "list show enumerate browse",
    "find search lookup query locate filter",
    "create make new add open",
    "add append insert attach",
    "add invite",
    "update edit change modify set rename adjust",
    "update reschedule postpone",
    "delete remove drop destroy trash erase scrap",
    "send post",
    "reply respond answer comment",
    "run execute trigger invoke kick launch start",
    "stop halt shut abort cancel kill",
    "restore revert rollback undo recover",
    "deactivate disable suspend offboard",
    "schedule book arrange",
    "count total number many",
    "aggregate group sum total average",
    "say said write wrote message",
    # objects
    "email mail message inbox",
    "issue ticket bug",
    "pr pull merge mr",
    "repo repository",
    "meeting event call appointment invitation",
    "calendar schedule agenda",
    "doc document page note",
    "wiki page confluence notion",
    "folder directory",
    "file object blob",
    "vm instance server machine host",
    "cost spend spending billing",
    "payment pay charge invoice bill",
    "balance money funds",
    "log logs output console",
    "error exception crash failure",
    "user member employee account",
    "customer client buyer",
    "contact person lead",
    "deploy deployment release rollout",
    "table collection dataset",
    "record row entry",
    "column field property schema",
    "chat conversation dm",
    "alert alarm warning monitor firing",
    "incident outage",
    "oncall pager",
    "comment note remark",
    "access permission share grant role",
    "link url",
    "address location place",
    "near nearby local",
    "shop store business",
    "directions route travel",
    "free busy freebusy availability available",
    "weather forecast rain temperature storm",
    "todo task reminder remind",
    "image picture icon",
    "text sms",
    "text content contents body",
    "rule filter automation automatically",
    "dns cname nameserver",
    "whoami authenticated",
    "version revision history",
    "inventory stock restock quantity",
    "diff change",
    "port firewall security",
    "block paragraph content",
    "depend dependency block blocking link relate",
    "worklog timesheet hours",
    "audit login sign",
    # kinds of products, as people name them
    "database db sql",
    "mongo mongodb",
    "postgres postgresql psql",
    "kubernetes k8s cluster kubectl",
    "crm salesforce hubspot",
    "disk filesystem local",
    "spreadsheet sheet gsheets",
    "ci pipeline build",
)


@dataclass(frozen=True)
class Options:
    """How tools and queries are analyzed and scored. The defaults are what measured best on the
    evaluation set (bench/search_eval.py); the other values are there to measure them again."""

    weights: tuple[float, float, float, float] = (3.0, 2.0, 1.0, 0.4)  # name, target, description, parameters
    b: tuple[float, float, float, float] = (0.5, 0.0, 0.75, 0.75)  # length normalization per field
    k1: float = 1.2
    stemmer: Literal["snowball", "none"] = "snowball"
    stop_words: bool = True
    synonyms: bool = True
    synonym_weight: float = 0.5  # a synonym's share of a typed word's score
    synonym_mode: Literal["max", "sum"] = "sum"  # a word and its synonyms: the best counts, or all
    coordination: float = 0.5  # > 0: favour tools that match more of the query's words (0: plain sum)
    copies: int = 2  # > 0: at most this many tools of one name in an answer while others match


class _Analyzer:
    """Text to index terms for one set of options, with each word's term remembered."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self._stop = STOP_WORDS if options.stop_words else frozenset()
        self._stem: Callable[[str], str] = (
            snowballstemmer.stemmer("english").stemWord if options.stemmer == "snowball" else str
        )
        self._terms: dict[str, str] = {}
        self.synonyms: dict[str, frozenset[str]] = {}
        if options.synonyms:
            table: dict[str, set[str]] = {}
            for group in SYNONYM_GROUPS:
                terms = {self.term(word) for word in group.split()}
                for term in terms:
                    table.setdefault(term, set()).update(terms - {term})
            self.synonyms = {term: frozenset(others) for term, others in table.items()}

    def term(self, word: str) -> str:
        term = self._terms.get(word)
        if term is None:
            term = self._stem(word)
            if len(self._terms) < 200_000:  # tools' words are a bounded vocabulary; queries are not
                self._terms[word] = term
        return term

    def tokens(self, text: str) -> list[str]:
        """The terms of a text or a name: words split at non-letters and case changes, a word with
        case changes also whole, lower-cased, stop words dropped, stemmed ("getBuildLog" -> get,
        build, log, getbuildlog; "GitHub" -> git, hub, github; "ec2" stays)."""
        return [self.term(word) for word in words(text) if word not in self._stop and not _letter(word)]


def words(text: str) -> list[str]:
    """The lower-cased words of a text: runs of letters and digits, split at case changes ("PRs"
    and "URLs" are acronyms in the plural: "pr", "url"); a run with case changes also whole."""
    out: list[str] = []
    for run in _RUN.findall(text):
        parts = [_acronym(part) for part in _CAMEL.findall(run)]
        if len(parts) > 1:
            out.extend(parts)
            out.append(run.lower())
        elif parts:
            out.append(parts[0])
    return out


def _letter(word: str) -> bool:
    """A lone letter: the "s" of "what's" and "team's", initials; no tool is found by one."""
    return len(word) == 1 and word.isalpha()


def _acronym(part: str) -> str:
    if len(part) > 2 and part[-1] == "s" and part[:-1].isupper():
        return part[:-1].lower()
    return part.lower()


_analyzers: dict[Options, _Analyzer] = {}


def analyzer(options: Options) -> _Analyzer:
    found = _analyzers.get(options)
    if found is None:
        found = _analyzers[options] = _Analyzer(options)
    return found


def tokens(text: str, options: Options = Options()) -> list[str]:  # noqa: B008 (frozen, hashable)
    return analyzer(options).tokens(text)


def _parameters_text(schema: Any, depth: int = 0) -> list[str]:
    """Property names and descriptions of an inputSchema, nested objects and arrays included."""
    if not isinstance(schema, Mapping) or depth > 3:
        return []
    parts: list[str] = []
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for name, spec in properties.items():
            parts.append(str(name))
            if isinstance(spec, Mapping):
                if isinstance(spec.get("description"), str):
                    parts.append(spec["description"])
                parts.extend(_parameters_text(spec, depth + 1))
    parts.extend(_parameters_text(schema.get("items"), depth + 1))
    return parts


def field_texts(prefixed: str, tool: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """The text of each field of a tool under its prefixed name: name, target, description,
    parameters."""
    target, _, own = prefixed.rpartition(SEPARATOR)
    described = [tool.get("title"), tool.get("description")]
    annotations = tool.get("annotations")
    if isinstance(annotations, Mapping):
        described.append(annotations.get("title"))
    description = " ".join(text for text in described if isinstance(text, str))
    return own or prefixed, target, description, " ".join(_parameters_text(tool.get("inputSchema")))


Key = tuple[str, bytes]  # (prefixed name, encoded definition): a tool as the catalog holds it


@dataclass(frozen=True)
class _Segment:
    """One target's tools, analyzed: a posting per (tool, distinct term) with the term's frequency
    in each field. Kept whole while the target's tools stay the same (the same keys)."""

    keys: tuple[Key, ...]
    terms: Ints  # term id of each posting
    tf: Floats  # (postings, fields)
    doc: Ints  # tool of each posting, counted within the segment
    lengths: Floats  # (tools, fields): terms per field


@dataclass(frozen=True)
class SearchIndex:
    """An immutable search index over one catalog's tools."""

    names: list[str]
    keys: list[Key]
    options: Options
    _vocabulary: dict[str, int]
    _segments: dict[str, _Segment]  # by target: what the next build reuses
    _offsets: npt.NDArray[np.int64]  # term t's postings: _postings_*[_offsets[t] : _offsets[t + 1]]
    _postings_doc: Ints
    _postings_impact: Floats
    _vectors: Floats | None = field(default=None, repr=False)  # unit embeddings, a row per tool
    _concepts: dict[str, tuple[Ints, Floats]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        entries: Iterable[tuple[str, bytes | Mapping[str, Any]]],
        previous: SearchIndex | None = None,
        options: Options | None = None,
    ) -> SearchIndex:
        """An index of ``entries`` (prefixed name, tool definition as encoded JSON or a dict),
        grouped by target in order of first appearance. A target whose tools are all the same as in
        ``previous`` (names and bytes) is not analyzed again. ValueError if a name appears twice."""
        options = options or (previous.options if previous is not None else Options())
        vocabulary: dict[str, int] = {}
        known: dict[str, _Segment] = {}
        if previous is not None and previous.options == options:
            # Terms of tools long gone stay in the vocabulary: start afresh once it has grown well
            # past the live terms.
            if len(previous._vocabulary) < 20_000 + 2 * int(np.count_nonzero(np.diff(previous._offsets))):
                vocabulary, known = dict(previous._vocabulary), previous._segments
        by_target: dict[str, list[Key]] = {}
        given: dict[Key, Mapping[str, Any]] = {}
        for prefixed, definition in entries:
            if isinstance(definition, bytes):
                key = (prefixed, definition)
            else:
                key = (prefixed, msgspec.json.encode(definition))
                given[key] = definition
            by_target.setdefault(prefixed.rpartition(SEPARATOR)[0], []).append(key)
        text = analyzer(options)
        segments: dict[str, _Segment] = {}
        for target, keys in by_target.items():
            segment = known.get(target)
            if segment is None or segment.keys != tuple(keys):
                tools = [given.get(key) or msgspec.json.decode(key[1]) for key in keys]
                segment = _analyze(text, keys, tools, vocabulary)
            segments[target] = segment
        return _assemble(options, vocabulary, segments)

    def search(self, query: str, limit: int, query_vector: Sequence[float] | None = None) -> list[str]:
        """The prefixed names of at most ``limit`` tools matching ``query``, most relevant first;
        none for a query without a known word. With ``query_vector`` (the query's embedding) on an
        index ``with_vectors``, the lexical and the vector rankings are fused."""
        if limit <= 0 or not self.names:
            return []
        scores = self._scores(query)
        cap = self.options.copies
        depth = limit if not cap else limit * 4
        if query_vector is not None and self._vectors is not None:
            ranking = self._fused(scores, query_vector, depth)
        else:
            ranking = _top(scores, depth)
        names = [self.names[i] for i in ranking]
        return names[:limit] if not cap else _diverse(names, limit, cap)

    def _scores(self, query: str) -> Floats:
        """Per tool, the sum over the query's words of each word's concept score (the word's own
        score plus its synonyms' scaled down), times the share of the query's words the tool
        matches to the power ``coordination``."""
        typed = list(dict.fromkeys(analyzer(self.options).tokens(query[:MAX_QUERY_CHARS])))
        typed = typed[:MAX_QUERY_TERMS]
        scores = np.zeros(len(self.names), dtype=np.float32)
        matched = np.zeros(len(self.names), dtype=np.float32)
        taken = set(typed)  # a typed word counts as typed; a synonym counts for one word only
        for term in typed:
            docs, values = self._concept(term, taken)
            scores[docs] += values
            matched[docs] += 1
        if typed and self.options.coordination:
            scores *= (matched / len(typed)) ** self.options.coordination
        return scores

    def _concept(self, term: str, taken: set[str]) -> tuple[Ints, Floats]:
        """The tools a word of a query finds and their scores: its postings with those of its
        synonyms not ``taken`` (which it takes), combined once per index and kept for the
        common case: the words of queries repeat ("list", "create"...)."""
        synonyms = analyzer(self.options).synonyms.get(term, frozenset())
        if not synonyms.isdisjoint(taken):
            free = synonyms.difference(taken)
            taken.update(free)
            return self._combine(term, free)
        taken.update(synonyms)
        found = self._concepts.get(term)
        if found is None:
            found = self._combine(term, synonyms)
            if term in self._vocabulary or synonyms:  # bounded: no entry for a word nobody has
                self._concepts[term] = found
        return found

    def _combine(self, term: str, synonyms: Iterable[str]) -> tuple[Ints, Floats]:
        tid = self._vocabulary.get(term)
        if not synonyms:
            if tid is None:
                return _NOTHING
            start, end = self._offsets[tid], self._offsets[tid + 1]
            found = (self._postings_doc[start:end], self._postings_impact[start:end])
        else:
            combined = np.zeros(len(self.names), dtype=np.float32)
            for member in (term, *sorted(synonyms)):
                if (mid := self._vocabulary.get(member)) is None:
                    continue
                start, end = self._offsets[mid], self._offsets[mid + 1]
                docs, impact = self._postings_doc[start:end], self._postings_impact[start:end]
                if member != term:
                    impact = impact * np.float32(self.options.synonym_weight)
                if self.options.synonym_mode == "max":
                    combined[docs] = np.maximum(combined[docs], impact)
                else:
                    combined[docs] += impact
            docs = np.flatnonzero(combined).astype(np.int32)
            found = (docs, combined[docs])
        return found

    def with_vectors(self, vectors: Mapping[Key, Sequence[float]]) -> SearchIndex:
        """This index with an embedding per tool, by key (``keys``); a tool without one ranks
        only lexically. The vectors must all have the same length."""
        dims = {len(vector) for vector in vectors.values()}
        if len(dims) != 1:
            raise ValueError("embeddings of different lengths" if dims else "no embeddings")
        matrix = np.zeros((len(self.keys), dims.pop()), dtype=np.float32)
        for row, key in enumerate(self.keys):
            if (vector := vectors.get(key)) is not None:
                matrix[row] = vector
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix /= np.where(norms == 0, 1, norms)
        return SearchIndex(
            self.names,
            self.keys,
            self.options,
            self._vocabulary,
            self._segments,
            self._offsets,
            self._postings_doc,
            self._postings_impact,
            matrix,
        )

    def _fused(self, scores: Floats, query_vector: Sequence[float], limit: int) -> Ints:
        """Reciprocal rank fusion (k = 60) of the lexical ranking and the cosine ranking."""
        vectors = self._vectors
        q = np.asarray(query_vector, dtype=np.float32)
        if vectors is None or q.shape != (vectors.shape[1],) or not np.any(q):
            return _top(scores, limit)
        cosine = vectors @ (q / np.linalg.norm(q))
        depth = max(limit * 4, 50)
        fused = np.zeros(len(self.names), dtype=np.float32)
        for ranking in (_top(scores, depth), _top(cosine, depth)):
            fused[ranking] += 1.0 / (60.0 + np.arange(1, len(ranking) + 1, dtype=np.float32))
        return _top(fused, limit)


_NOTHING = (np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32))


def _diverse(names: list[str], limit: int, cap: int) -> list[str]:
    """``names`` in order, at most ``cap`` of one tool name (the part after the target) until the
    others run out: copies of one server under several targets do not fill the answer."""
    seen: Counter[str] = Counter()
    first: list[str] = []
    later: list[str] = []
    for name in names:
        own = name.rpartition(SEPARATOR)[2]
        seen[own] += 1
        (first if seen[own] <= cap else later).append(name)
    return (first + later)[:limit]


def _top(scores: Floats, limit: int) -> Ints:
    """The indices of the ``limit`` highest positive scores, highest first; ties in catalog order
    (but for those cut at ``limit``: any of them)."""
    ids = np.flatnonzero(scores > 0).astype(np.int32)
    values = scores[ids]
    if ids.size > limit:
        part = np.argpartition(-values, limit - 1)[:limit]
        ids, values = ids[part], values[part]
    return ids[np.lexsort((ids, -values))]


def _analyze(
    text: _Analyzer, keys: list[Key], tools: list[Mapping[str, Any]], vocabulary: dict[str, int]
) -> _Segment:
    terms: list[int] = []
    tf: list[list[float]] = []
    doc: list[int] = []
    lengths: list[list[int]] = []
    for i, ((prefixed, _), tool) in enumerate(zip(keys, tools, strict=True)):
        per_field = [text.tokens(field_text) for field_text in field_texts(prefixed, tool)]
        counts: dict[int, list[float]] = {}
        for f, words in enumerate(per_field):
            for word, count in Counter(words).items():
                tid = vocabulary.setdefault(word, len(vocabulary))
                counts.setdefault(tid, [0.0, 0.0, 0.0, 0.0])[f] = count
        terms.extend(counts)
        tf.extend(counts.values())
        doc.extend([i] * len(counts))
        lengths.append([len(words) for words in per_field])
    return _Segment(
        tuple(keys),
        np.array(terms, dtype=np.int32),
        np.array(tf, dtype=np.float32).reshape(len(terms), 4),
        np.array(doc, dtype=np.int32),
        np.array(lengths, dtype=np.float32).reshape(len(keys), 4),
    )


def _assemble(options: Options, vocabulary: dict[str, int], segments: dict[str, _Segment]) -> SearchIndex:
    """The postings of every term with their BM25F impacts, computed as whole arrays."""
    keys = [key for segment in segments.values() for key in segment.keys]
    names = [name for name, _ in keys]
    if len(set(names)) != len(names):
        raise ValueError("a tool name appears twice in the search index")
    n = len(keys)
    offsets = np.zeros(len(vocabulary) + 1, dtype=np.int64)
    if n == 0:
        empty = np.zeros(0, dtype=np.int32)
        return SearchIndex(
            names, keys, options, vocabulary, segments, offsets, empty, empty.astype(np.float32)
        )
    parts = list(segments.values())
    terms = np.concatenate([s.terms for s in parts])
    tf = np.concatenate([s.tf for s in parts])
    lengths = np.concatenate([s.lengths for s in parts])
    starts = np.cumsum([0] + [len(s.keys) for s in parts[:-1]]).astype(np.int32)
    doc_of = np.concatenate([s.doc for s in parts]) + np.repeat(starts, [len(s.doc) for s in parts])
    weights = np.asarray(options.weights, dtype=np.float32)
    b = np.asarray(options.b, dtype=np.float32)
    norm = 1.0 - b + b * (lengths / np.maximum(lengths.mean(axis=0), 1.0))  # (tools, fields)
    pseudo = (tf * (weights / norm)[doc_of]).sum(axis=1)
    df = np.bincount(terms, minlength=len(vocabulary))
    idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
    impact = idf[terms] * pseudo * (options.k1 + 1) / (pseudo + options.k1)
    # group the postings by term: a radix sort on 16-bit ids is ~40x faster than a comparison sort
    order = np.argsort(terms.astype(np.uint16) if len(vocabulary) <= 65536 else terms, kind="stable")
    np.cumsum(df, out=offsets[1:])
    return SearchIndex(
        names, keys, options, vocabulary, segments, offsets, doc_of[order], impact[order].astype(np.float32)
    )


class Embedder(Protocol):
    """An embedding model: one vector per text, all of one length. Plugging one in fuses semantic
    ranking with the lexical one (docs/search.md)."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def embedding_text(prefixed: str, definition: bytes | Mapping[str, Any]) -> str:
    """What is embedded for a tool: its fields as words, unstemmed."""
    tool = msgspec.json.decode(definition) if isinstance(definition, bytes) else definition
    name, target, description, parameters = field_texts(prefixed, tool)
    return f"{target}: {' '.join(words(name))}\n{description}\n{parameters}"[:2000]


class HttpEmbedder:
    """An embedding service speaking the common ``POST /v1/embeddings`` shape (``{"model",
    "input": [...]}`` -> ``{"data": [{"index", "embedding": [...]}, ...]}``), as Ollama, vLLM,
    text-embeddings-inference, llama.cpp's server and LiteLLM do. ``client`` is an
    ``httpx.AsyncClient`` (or anything with its ``post``)."""

    def __init__(self, client: Any, url: str, model: str, batch: int = 64) -> None:
        self._client, self._url, self._model, self._batch = client, url, model, batch

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            chunk = list(texts[start : start + self._batch])
            response = await self._client.post(self._url, json={"model": self._model, "input": chunk})
            response.raise_for_status()
            data = msgspec.json.decode(response.content, type=_EmbeddingResponse).data
            if len(data) != len(chunk):
                raise ValueError(f"the embedding service gave {len(data)} vectors for {len(chunk)} texts")
            vectors.extend(item.embedding for item in sorted(data, key=lambda item: item.index))
        return vectors


class _Embedding(msgspec.Struct):
    embedding: list[float]
    index: int = 0


class _EmbeddingResponse(msgspec.Struct):
    data: list[_Embedding]
