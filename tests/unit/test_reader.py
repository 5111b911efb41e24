"""Line framing: the pure LineFramer, and read_pipe on a real pipe (holding, flushing, EOF)."""

from __future__ import annotations

import contextlib
import os
import posix
import random
from collections.abc import Iterator

import gevent
import pytest

from gaffer_gevent.reader import LineFramer, available, read_pipe
from gaffer_gevent.streams import Stream
from tests.helpers import wait_for


def test_a_read_of_whole_lines_is_the_chunk_itself() -> None:
    framer = LineFramer(1024)
    data = b"one\ntwo\n"
    assert framer.feed(data) is data  # no copy on the hot path
    assert framer.pending == b""


def test_a_partial_line_is_held_until_its_newline() -> None:
    framer = LineFramer(1024)
    assert framer.feed(b"line 1") is None
    assert framer.feed(b"\n") == b"line 1\n"
    assert framer.feed(b"line 2\nline") == b"line 2\n"
    assert framer.pending == b"line"
    assert framer.feed(b" 3\nline 4") == b"line 3\n"
    assert framer.flush() == b"line 4"
    assert framer.flush() == b""


def test_a_line_as_long_as_a_chunk_is_sent_in_pieces_and_reads_never_overfill() -> None:
    framer = LineFramer(8)
    assert framer.feed(b"abcde") is None
    assert framer.room() == 3  # the reader asks for no more than fits in one chunk
    assert framer.feed(b"fgh") == b"abcdefgh"
    assert framer.room() == 8


@pytest.mark.parametrize("seed", range(5))
def test_any_split_of_any_bytes_comes_out_exact_in_line_chunks(seed: int) -> None:
    rng = random.Random(seed)
    data = bytes(rng.choice(b"ab\n\x00\xff") for _ in range(20000))
    framer = LineFramer(512)
    chunks: list[bytes] = []
    pos = 0
    while pos < len(data):
        piece = data[pos : pos + rng.randint(1, framer.room())]
        pos += len(piece)
        chunk = framer.feed(piece)
        if chunk is not None:
            chunks.append(chunk)
    chunks.append(framer.flush())
    assert b"".join(chunks) == data
    assert all(len(c) <= 512 for c in chunks)
    assert all(c.endswith(b"\n") or len(c) == 512 for c in chunks[:-1])


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A non-blocking read end and its write end, which tests close with ``posix.close``.

    gevent's ``os.close`` defers the close until the loop has polled once more, so a
    reader waiting on the other end would see EOF only at the next unrelated wake-up; a
    child closing its end is the plain syscall.
    """
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):
            posix.close(fd)


def datas(stream: Stream) -> list[bytes]:
    return [c.data for c in stream.chunks]


def test_a_print_split_in_two_writes_is_one_chunk(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    stream = Stream("out")
    reader = gevent.spawn(read_pipe, read_end, [stream], 4096, 30.0)  # a long hold: no race
    os.write(write_end, b"line 1")
    wait_for(lambda: available(read_end) == 0)  # read, and held
    assert stream.last_seq == 0
    os.write(write_end, b"\n")
    wait_for(lambda: stream.last_seq == 1)
    assert datas(stream) == [b"line 1\n"]
    posix.close(write_end)
    reader.join(timeout=5)
    assert reader.dead and datas(stream) == [b"line 1\n"]


def test_a_prompt_without_newline_is_sent_after_the_hold(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    stream = Stream("out")
    reader = gevent.spawn(read_pipe, read_end, [stream], 4096, 0.01)
    try:
        os.write(write_end, b"Password: ")
        wait_for(lambda: stream.last_seq == 1, timeout=5)
        assert datas(stream) == [b"Password: "]
        os.write(write_end, b"secret\n")
        wait_for(lambda: stream.last_seq == 2, timeout=5)
        assert datas(stream) == [b"Password: ", b"secret\n"]
        assert not stream.chunks[1].starts_line  # it goes on with the prompt's line
    finally:
        reader.kill()


def test_what_is_held_at_eof_is_sent(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    stream = Stream("out")
    reader = gevent.spawn(read_pipe, read_end, [stream], 4096, 30.0)
    os.write(write_end, b"a\nno newline")
    wait_for(lambda: stream.last_seq == 1)
    posix.close(write_end)
    reader.join(timeout=5)
    assert reader.dead and datas(stream) == [b"a\n", b"no newline"]


def test_what_is_held_when_the_reader_is_killed_is_sent(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    stream = Stream("out")
    reader = gevent.spawn(read_pipe, read_end, [stream], 4096, 30.0)
    os.write(write_end, b"half")
    wait_for(lambda: available(read_end) == 0)
    reader.kill(timeout=5)  # as a process does when a grandchild keeps the pipe open
    assert datas(stream) == [b"half"]
