"""List the demo gateway's tools and call one, as a demo user, with the official MCP SDK client.

    .venv/bin/python demo/call.py alice http://127.0.0.1:8080/gateways/<id>/mcp \\
        notes___add_note '{"text": "hello"}'

Without a tool name it only lists. When the tool's target needs the user's consent first, the
gateway answers with a URL (JSON-RPC -32042, URL elicitation): it is printed; open it in a
browser, sign in as the same user, allow, and run the command again. Exit status: 0 the call
succeeded, 1 it failed, 3 consent needed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from common import USERS, Demo, connection_failure, mcp_client, user_token

NEEDS_CONSENT = 3


def _text(result: Any) -> str:
    return "\n".join(getattr(c, "text", json.dumps(c.model_dump(mode="json"))) for c in result.content)


async def run(url: str, token: str, tool: str | None, arguments: dict[str, Any]) -> int:
    from mcp import MCPError, UrlElicitationRequiredError

    async with mcp_client(url, token) as client:
        tools = (await client.list_tools()).tools
        print(f"{len(tools)} tools:")
        for t in tools:
            print(f"  {t.name:28} {t.description or ''}")
        if tool is None:
            return 0
        print(f"\ncalling {tool} {json.dumps(arguments)}")
        try:
            result = await client.call_tool(tool, arguments)
        except MCPError as e:
            if e.error.code != -32042:
                print(f"error {e.error.code}: {e.error.message}")
                return 1
            for elicitation in UrlElicitationRequiredError.from_error(e.error).elicitations:
                print(f"\n{elicitation.message}\n\n  {elicitation.url}\n")
            print("Open it in a browser, sign in as the same user, allow; then run this command again.")
            return NEEDS_CONSENT
        print(("tool error: " if result.is_error else "result: ") + _text(result))
        return 1 if result.is_error else 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("user", choices=sorted(USERS))
    p.add_argument("mcp_url", help="the demo gateway's MCP URL (make demo prints it)")
    p.add_argument("tool", nargs="?", help="a tool to call, e.g. notes___list_notes")
    p.add_argument("arguments", nargs="?", default="{}", help="its arguments as a JSON object")
    args = p.parse_args(argv)
    try:
        arguments = json.loads(args.arguments)
    except json.JSONDecodeError as e:
        p.error(f"arguments must be a JSON object: {e}")
    if not isinstance(arguments, dict):
        p.error("arguments must be a JSON object")
    try:
        demo = Demo.from_env()
        token = user_token(demo.idp, args.user, args.mcp_url)
        sys.exit(asyncio.run(run(demo.reach(args.mcp_url), token, args.tool, arguments)))
    except RuntimeError as e:
        sys.exit(f"call: {e}")
    except BaseException as e:
        reason = connection_failure(e)
        if reason is None:
            raise
        sys.exit(f"call: could not talk to the gateway at {args.mcp_url} ({reason}): is make demo running?")


if __name__ == "__main__":
    main()
