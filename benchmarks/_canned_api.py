"""A floor for the REST hop: an HTTP server that answers every request at once, with a canned
completed execution, on keep-alive connections. Run as `python _canned_api.py PORT`.

Against it, a client's call costs only the client library, the kernel's loopback and the least
work any HTTP server must do: what a REST hop costs before the API does anything.
"""

from __future__ import annotations

import asyncio
import json
import sys

BODY = json.dumps(
    {
        "devbox_id": "dbx_canned",
        "execution_id": "exn_canned",
        "status": "completed",
        "exit_status": 0,
        "stdout": "",
        "stderr": "",
        "shell_name": None,
        "stdout_truncated": False,
        "stderr_truncated": False,
    }
).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            writer.write(RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(answer, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
