"""The tool search's pure logic: tokenizing names, ranking, odd queries, rebuilding after changes.
Quality and speed are measured by `make eval` (bench/search_eval.py), not here."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from gatehouse_gateway.search import (
    MAX_QUERY_CHARS,
    HttpEmbedder,
    Options,
    SearchIndex,
    embedding_text,
    field_texts,
    tokens,
    words,
)


def tool(name: str, description: str, **params: str) -> dict[str, Any]:
    properties = {p: {"type": "string", "description": text} for p, text in params.items()}
    return {
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": properties},
    }


def entries(target: str, *tools: dict[str, Any]) -> list[tuple[str, bytes]]:
    out = []
    for t in tools:
        prefixed = f"{target}___{t['name']}"
        out.append((prefixed, msgspec.json.encode(dict(t, name=prefixed))))
    return out


GITHUB = entries(
    "github",
    tool(
        "create_issue",
        "Create a new issue in a GitHub repository.",
        owner="Repository owner",
        title="Issue title",
    ),
    tool("list_pull_requests", "List and filter repository pull requests.", state="open, closed or all"),
    tool("get_file_contents", "Get the contents of a file from a repository.", path="Path to the file"),
)
SLACK = entries(
    "slack",
    tool(
        "slack_post_message", "Post a new message to a Slack channel", channel_id="The channel", text="Text"
    ),
    tool("slack_get_users", "Get a list of all users in the workspace", cursor="Pagination cursor"),
)
CALENDAR = entries(
    "google-calendar",
    tool("create-event", "Create a new calendar event.", summary="Title of the event", start="Start time"),
    tool("list-events", "List events from one or more calendars.", timeMin="Start time boundary"),
)
CATALOG = GITHUB + SLACK + CALENDAR


def test_names_split_into_words_in_every_naming_style() -> None:
    assert words("list_pull_requests") == ["list", "pull", "requests"]
    assert words("getBuildLog") == ["get", "build", "log", "getbuildlog"]  # the whole word too
    assert words("API-post-database-query") == ["api", "post", "database", "query"]
    assert words("google-calendar___list-events") == ["google", "calendar", "list", "events"]
    assert words("GitHub s3 ec2 HTTPServer") == [
        "git",
        "hub",
        "github",
        "s3",
        "ec2",
        "http",
        "server",
        "httpserver",
    ]
    assert words("PRs and URLs") == ["pr", "and", "url"]  # acronyms in the plural
    assert words("") == [] and words("___ -- ..") == []


def test_tokens_are_stemmed_lower_cased_and_without_stop_words() -> None:
    assert tokens("Listing the open Issues of my repositories") == ["list", "open", "issu", "repositori"]
    assert tokens("the of a") == []
    assert tokens("what's the team's plan") == ["team", "plan"]  # lone letters are no words
    plain = Options(stemmer="none", stop_words=False)
    assert tokens("Listing the Issues", plain) == ["listing", "the", "issues"]


def test_fields_of_a_tool() -> None:
    name, data = GITHUB[0]
    definition = msgspec.json.decode(data)
    definition["title"] = "New issue"
    assert field_texts(name, definition) == (
        "create_issue",
        "github",
        "New issue Create a new issue in a GitHub repository.",
        "owner Repository owner title Issue title",
    )
    nested = {"inputSchema": {"properties": {"filter": {"type": "object", "properties": {"label": {}}}}}}
    assert field_texts("t___x", nested)[3] == "filter label"
    assert field_texts("no-separator", {"inputSchema": "not a schema"}) == ("no-separator", "", "", "")


def test_ranks_the_tool_a_person_means_first() -> None:
    index = SearchIndex.build(CATALOG)
    assert index.search("open a new bug on github", 3)[0] == "github___create_issue"
    assert index.search("which PRs are open", 3)[0] == "github___list_pull_requests"
    assert index.search("send a message to the team's slack channel", 3)[0] == "slack___slack_post_message"
    assert index.search("schedule a meeting on my calendar", 3)[0] == "google-calendar___create-event"
    assert index.search("read the README file", 3)[0] == "github___get_file_contents"
    # the target's name alone finds its tools
    assert set(index.search("slack", 10)) == {"slack___slack_post_message", "slack___slack_get_users"}


def test_limit_and_queries_without_a_known_word() -> None:
    index = SearchIndex.build(CATALOG)
    assert len(index.search("events calendar create list", 1)) == 1
    assert len(index.search("issue repository file events calendar", 100)) <= len(CATALOG)
    assert index.search("create issue", 0) == [] and index.search("create issue", -1) == []
    for query in ("", "   ", "the of a", "zzzz qqqq", "🙂", "\x00"):
        assert index.search(query, 5) == []
    assert "zzzz" not in index._concepts  # words of no tool are not remembered
    assert SearchIndex.build([]).search("anything", 5) == []


def test_a_long_query_is_cut_not_refused() -> None:
    index = SearchIndex.build(CATALOG)
    long = "create issue " + "padding " * 10_000
    assert index.search(long, 3)[0] == "github___create_issue"
    assert index.search("x" * MAX_QUERY_CHARS + " create issue", 3) == []  # past the cut


def test_ties_keep_catalog_order_and_results_are_stable() -> None:
    same = entries("a", tool("one", "Do the thing")) + entries("b", tool("one", "Do the thing"))
    index = SearchIndex.build(same)
    assert index.search("thing", 5) == ["a___one", "b___one"]
    assert index.search("thing", 5) == index.search("thing", 5)


def test_dict_and_bytes_definitions_index_alike() -> None:
    as_dicts = [(name, msgspec.json.decode(data)) for name, data in CATALOG]
    assert SearchIndex.build(as_dicts).search("post slack message", 5) == SearchIndex.build(CATALOG).search(
        "post slack message", 5
    )


def test_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        SearchIndex.build(GITHUB + GITHUB[:1])


def test_rebuild_follows_a_target_added_changed_and_removed() -> None:
    index = SearchIndex.build(GITHUB + SLACK)
    assert index.search("calendar event", 5) == []

    added = SearchIndex.build(GITHUB + SLACK + CALENDAR, index)
    assert added.search("calendar event", 5)[:2] == [
        "google-calendar___create-event",
        "google-calendar___list-events",
    ]

    renamed = entries("slack", tool("slack_send_dm", "Send a direct message to a user", user="User ID"))
    changed = SearchIndex.build(GITHUB + renamed + CALENDAR, added)
    assert "slack___slack_post_message" not in changed.search("slack post message", 5)
    assert changed.search("direct message a user", 1) == ["slack___slack_send_dm"]

    removed = SearchIndex.build(GITHUB + CALENDAR, changed)
    assert not any(name.startswith("slack___") for name in removed.search("slack message users", 10))
    assert removed.names == [name for name, _ in GITHUB + CALENDAR]
    # the older indexes are untouched (immutable): a search in flight keeps its answer
    assert added.search("slack post message", 1) == ["slack___slack_post_message"]
    # a rebuilt index ranks as one built from nothing
    fresh = SearchIndex.build(GITHUB + CALENDAR)
    for query in ("create issue", "list events", "file contents path", "pull requests"):
        assert removed.search(query, 5) == fresh.search(query, 5)


def test_rebuild_reuses_unchanged_targets() -> None:
    index = SearchIndex.build(CATALOG)
    again = SearchIndex.build(CATALOG, index)
    assert all(again._segments[t] is index._segments[t] for t in ("github", "slack", "google-calendar"))
    one_changed = GITHUB + SLACK + entries("google-calendar", tool("create-event", "Make an event"))
    after = SearchIndex.build(one_changed, index)
    assert after._segments["github"] is index._segments["github"]
    assert after._segments["google-calendar"] is not index._segments["google-calendar"]


def test_options_change_the_ranking_they_are_measured_for() -> None:
    plain = SearchIndex.build(CATALOG, options=Options(synonyms=False))
    assert plain.search("show pull requests", 3)[0] == "github___list_pull_requests"
    assert "github___create_issue" not in plain.search("ticket", 5)  # no synonym: no match
    assert SearchIndex.build(CATALOG).search("ticket", 5)[0] == "github___create_issue"


def test_vectors_fuse_with_the_lexical_ranking() -> None:
    index = SearchIndex.build(CATALOG)
    # a toy embedding: one dimension per tool, so the vector ranking is known
    vectors = {key: [1.0 if i == j else 0.0 for j in range(len(CATALOG))] for i, key in enumerate(index.keys)}
    fused = index.with_vectors(vectors)
    users = index.names.index("slack___slack_get_users")
    query = [1.0 if j == users else 0.0 for j in range(len(CATALOG))]
    # no word matches, the vector does
    assert fused.search("zzzz", 1, query_vector=query) == ["slack___slack_get_users"]
    # both rankings agree: first; a wrong-sized or zero vector falls back to lexical
    assert fused.search("workspace users", 1, query_vector=query) == ["slack___slack_get_users"]
    assert fused.search("create issue", 1, query_vector=[0.0] * len(CATALOG)) == ["github___create_issue"]
    assert fused.search("create issue", 1, query_vector=[1.0]) == ["github___create_issue"]
    with pytest.raises(ValueError):
        index.with_vectors({key: [1.0] * (i + 1) for i, key in enumerate(index.keys)})


def test_embedding_text_reads_as_words() -> None:
    name, data = CALENDAR[0]
    assert embedding_text(name, data).startswith(
        "google-calendar: create event\nCreate a new calendar event."
    )


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.content = msgspec.json.encode(body)

    def raise_for_status(self) -> None:
        pass


class _Client:
    """Stands in for httpx.AsyncClient: answers /v1/embeddings out of order, as servers may."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []

    async def post(self, url: str, json: Any) -> _Response:
        self.requests.append((url, json))
        data = [{"index": i, "embedding": [float(len(text))]} for i, text in enumerate(json["input"])]
        return _Response({"data": list(reversed(data)), "model": json["model"]})


def test_http_embedder_batches_and_keeps_order() -> None:
    client = _Client()
    embedder = HttpEmbedder(client, "http://embed.invalid/v1/embeddings", "small", batch=2)
    vectors = asyncio.run(embedder.embed(["a", "bb", "ccc"]))
    assert vectors == [[1.0], [2.0], [3.0]]
    assert [len(body["input"]) for _, body in client.requests] == [2, 1]
    assert client.requests[0][1]["model"] == "small"


def test_copies_of_one_tool_do_not_fill_the_answer() -> None:
    teams = [entries(f"github-{team}", tool("create_issue", "Create an issue")) for team in "abcd"]
    other = entries("jira", tool("jira_create_issue", "Create a Jira issue"))
    catalog = [entry for team in teams for entry in team] + other
    capped = SearchIndex.build(catalog).search("create issue", 4)
    assert capped[:2] == ["github-a___create_issue", "github-b___create_issue"]
    assert "jira___jira_create_issue" in capped[:3]  # before the third copy
    assert len(capped) == 4  # the copies come back once the others run out
    uncapped = SearchIndex.build(catalog, options=Options(copies=0)).search("create issue", 4)
    assert uncapped == [f"github-{team}___create_issue" for team in "abcd"]
