"""The journal's writes during a send, grouped: one commit per turn of the event loop.

Every message costs journal writes (its claim before the SMTP transaction,
its outcome after), and a commit costs as much as a good part of an SMTP
transaction. ``JournalWriter`` groups them: the claims asked for in the same
turn of the loop (replies often arrive together) and the outcomes recorded
since the last commit share one transaction. Under load that is several
claims and outcomes per commit.

The crash guarantee is unchanged: a sender waits until its claim is
committed before its message data goes out, so after a SIGKILL at most the
messages in flight (``concurrency``) are unknown. Outcomes are written after
the fact; a crash before their commit leaves such a row ``sending`` — unknown,
never sent twice.

(A writer thread with its own connection was tried too: it was 3 % slower —
the commits are short in WAL mode, and the thread competes for the GIL.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from datetime import datetime
from typing import Any

from mailer.audience.suppressions import suppress
from mailer.core.recipient import Recipient
from mailer.delivery.journal import Claim, Journal


class JournalWriter:
    """The journal writes of a run, claims batched per turn of the loop.

    A sender asks for its claim and waits; the claims asked for in the same
    turn (replies often arrive together) and the outcomes recorded since the
    last commit share one transaction, committed at the end of the turn.
    """

    def __init__(self, journal: Journal):
        self.journal = journal
        self._waiting: list[tuple[tuple[Recipient, str, str], asyncio.Future[Claim]]] = []

    def claim(self, recipient: Recipient, variant: str, message_id: str) -> ClaimGate:
        """Ask for the row before the SMTP transaction; await the gate before DATA.

        Nothing is written yet: the claim is committed, together with every
        claim asked for since the last commit, when the first sender that
        needs its answer awaits its gate. Senders ask before MAIL FROM and
        need the answer after RCPT TO, so under load several claims (and the
        outcomes recorded meanwhile) share a commit.
        """
        answer: asyncio.Future[Claim] = asyncio.get_running_loop().create_future()
        self._waiting.append(((recipient, variant, message_id), answer))
        return ClaimGate(self, answer)

    def commit_claims(self) -> None:
        """Commit every claim asked for so far (and the outcomes waiting); answer their gates."""
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        try:
            claims = self.journal.claim_many([request for request, _ in waiting])
        except Exception as exc:  # a broken database: every sender hears it
            for _, answer in waiting:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for (_, answer), claim in zip(waiting, claims, strict=True):
            if not answer.done():
                answer.set_result(claim)

    def outcome(
        self,
        email: str,
        status: str,
        code: int | None,
        reply: str,
        bounce: bool,
        *,
        charged: bool = True,
    ) -> None:
        """Record an SMTP transaction's outcome (committed with the next claim or flush).

        ``charged=False`` gives back the attempt the claim counted (a 421, a relay that
        could not be reached: nothing about this recipient).
        """
        self.journal.mark_result(
            email, status, code, reply, bounce=bounce, later=True, charged=charged
        )

    def withdraw(self, gate: ClaimGate) -> None:
        """Forget a claim not committed yet (its sender was cut off): nothing is written."""
        self._waiting = [entry for entry in self._waiting if entry[1] is not gate.answer]
        if not gate.answer.done():
            gate.answer.cancel()

    def mark_suppressed(self, recipient: Recipient, reason: str) -> None:
        """Record a recipient skipped for being on the suppression list."""
        self.journal.mark_suppressed(recipient, reason)

    def mark_held(self, recipient: Recipient, reason: str) -> None:
        """Record a recipient the frequency cap holds back for now."""
        self.journal.mark_held(recipient, reason)

    def suppress(self, email: str, source: str, now: datetime) -> None:
        """Put a hard bounce on the suppression list."""
        suppress(self.journal.conn, email, "bounced", source, now=now)

    async def flush(self) -> None:
        """Commit everything recorded so far."""
        self.commit_claims()
        self.journal.flush()

    def close(self) -> None:
        """Nothing to release."""


class ClaimGate:
    """The answer to one claim: ``await gate`` is True when this run may send the message.

    Awaiting it commits the claims still waiting (see ``JournalWriter.claim``);
    it may be awaited any number of times, by the transport before DATA and by
    the send loop afterwards.
    """

    __slots__ = ("_writer", "answer")

    def __init__(self, writer: JournalWriter, answer: asyncio.Future[Claim]):
        self._writer = writer
        self.answer = answer

    def __await__(self) -> Generator[Any, None, bool]:
        return self._granted().__await__()

    async def _granted(self) -> bool:
        if not self.answer.done():
            self._writer.commit_claims()
        return (await self.answer) is Claim.CLAIMED
