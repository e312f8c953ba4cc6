"""An SSH server with its SFTP subsystem over a folder, on a free loopback port, for the file
exchange tests: a client key and a known_hosts file are written under ``keys``."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import asyncssh


class SftpServer:
    """asyncssh's SSH server with an SFTP subsystem (``sftp``) chrooted to ``root``."""

    def __init__(
        self,
        root: Path,
        keys: Path,
        *,
        sftp: type[asyncssh.SFTPServer] = asyncssh.SFTPServer,
        server: Callable[[], asyncssh.SSHServer] | None = None,
    ) -> None:
        self.root = root
        self.sftp = sftp
        self.server_factory = server
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        client = asyncssh.generate_private_key("ssh-ed25519")
        self.key_file = keys / "client_key"
        client.write_private_key(str(self.key_file))
        self.client_public = client.export_public_key().decode()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.known_hosts = keys / "known_hosts"
        public = self.host_key.export_public_key().decode().strip()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public}\n")
        self.server: asyncssh.SSHAcceptor | None = None

    async def start(self) -> None:
        self.server = await asyncssh.listen(
            "127.0.0.1",
            self.port,
            server_factory=self.server_factory,
            server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(self.client_public),
            sftp_factory=lambda chan: self.sftp(chan, chroot=str(self.root).encode()),
            allow_scp=False,
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
