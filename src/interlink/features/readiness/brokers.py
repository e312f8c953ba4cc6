"""Is a broker system reachable the way its deliveries go? Nothing is published.

- AMQP: the broker lets us in with the URL in ``amqp.url_env``, and each checked flow's
  exchange exists (for the default exchange, the queue its routing key names). Whether a
  queue is bound for the routing key of a named exchange cannot be asked without publishing;
  a key nobody has bound shows at the first delivery, as *rejected: unroutable*.
- NATS: the servers let us in, and each checked flow's subject is taken by a JetStream stream
  (the one ``nats.stream`` names, when it names one).

Each probe answers ``(answer, None)`` or ``(None, why)``, as the checklist's other probes do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence

import aiormq
import nats.errors
import nats.js.errors

from interlink.config import Flow, System, address_parts, broker_address
from interlink.errors import ConfigError, TransportError
from interlink.transports.amqp import connect as amqp_connect
from interlink.transports.jetstream import connect as nats_connect

Probe = tuple[str | None, str | None]


async def probe_broker(system: System, flows: Sequence[Flow]) -> Probe:
    """Probe ``system``'s broker for ``flows`` (the flows into it being checked)."""
    timeout = system.timeout.total_seconds()
    try:
        places = [address_parts(broker_address(system, flow)) for flow in flows]
    except ConfigError as error:
        return None, "; ".join(error.problems)
    variable = system.amqp.url_env if system.amqp else system.nats.url_env if system.nats else None
    if variable is not None and not os.environ.get(variable):
        return None, f"{variable} is not set (the broker URL)"
    try:
        if system.transport == "amqp":
            return await asyncio.wait_for(_amqp(system, places, timeout), timeout)
        return await asyncio.wait_for(_nats(system, places, timeout), timeout)
    except TimeoutError:
        return None, f"no answer within {timeout:g}s"
    except TransportError as error:
        return None, error.message
    except (aiormq.exceptions.ProbableAuthenticationError, aiormq.exceptions.ChannelAccessRefused):
        return None, "the broker refused us (user, password or permissions)"
    except (OSError, aiormq.exceptions.AMQPError, nats.errors.Error) as error:
        return None, f"cannot connect: {_said(error)}"


async def _amqp(system: System, places: list[list[str]], timeout: float) -> Probe:
    assert system.amqp is not None, "a broker system has its settings (config)"
    connection = await amqp_connect(system.name, system.amqp.url_env, timeout)
    try:
        found = []
        for exchange, key in sorted({(p[0], p[1]) for p in places}):
            # A passive declare that finds nothing closes the channel: one channel each.
            channel = await connection.channel(publisher_confirms=False)
            try:
                if exchange:
                    await channel.declare_exchange(exchange, passive=True)
                    found.append(f"exchange {exchange!r} exists")
                else:
                    await channel.declare_queue(key, passive=True)
                    found.append(f"queue {key!r} exists (default exchange)")
            except aiormq.exceptions.ChannelNotFoundEntity:
                what = f"exchange {exchange!r}" if exchange else f"queue {key!r}"
                return None, f"logged in, but the broker has no {what}"
            finally:
                with contextlib.suppress(Exception):
                    await channel.close()
        return "logged in; " + "; ".join(found), None
    finally:
        with contextlib.suppress(Exception):
            await connection.close()


async def _nats(system: System, places: list[list[str]], timeout: float) -> Probe:
    assert system.nats is not None, "a broker system has its settings (config)"
    wanted = system.nats.stream
    client = await nats_connect(system.name, system.nats, timeout)
    try:
        js = client.jetstream()
        found = []
        for subject in sorted({p[0] for p in places}):
            try:
                stream = await js.find_stream_name_by_subject(subject)
            except nats.js.errors.NotFoundError:
                return None, f"logged in, but no JetStream stream takes subject {subject!r}"
            if wanted is not None and stream != wanted:
                return None, f"subject {subject!r} goes to stream {stream!r}, not {wanted!r}"
            found.append(f"subject {subject!r} goes to stream {stream!r}")
        return "logged in; " + "; ".join(found), None
    finally:
        with contextlib.suppress(Exception):
            await client.close()


def _said(error: BaseException) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__
