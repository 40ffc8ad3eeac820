"""An instance of the network-namespace cluster, served by ``warpcall serve`` (``scripts/netns_cluster.py`` starts it)::

    ip netns exec <namespace> env cluster.name=a cluster.etcd=http://10.213.0.1:2379 cluster.prefix=/demo/ \\
        cluster.ttl=2 python -m warpcall serve netns_cluster_instance:InstanceModule --host 10.213.0.2 --port 8000

(from scripts/, or with it on PYTHONPATH). It serves the ``cluster-demo`` component on the host's
address, registered in etcd under ``cluster.prefix`` with a lease of ``cluster.ttl`` seconds; the
``cluster.*`` keys come from the environment (``warpcall serve`` reads dotted variable names as
configuration keys). Besides ``warpcall serve``'s ready line it prints ``DEREGISTERED`` on standard
output when SIGTERM's drain has taken it out of etcd, the drain's first step.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from netns_cluster_node import CHANNEL, ClusterComponent, Where, WhereAmI

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    ComponentRegistry,
    FastAPIServer,
    Server,
    ServiceManager,
    ServiceModule,
    health,
    implementation,
)
from warpcall.di import create, module
from warpcall.di.configuration import ConfigurationManager
from warpcall.registry.etcd import EtcdComponentRegistry

#: what the drain waits after deregistering: the time the clients' etcd watch takes to hear of it
DEREGISTER_DELAY = 0.3
#: how long the drain lets the calls under way finish once the server stops accepting
GRACE_PERIOD = 2.0


@implementation()
class WhereAmIImpl(WhereAmI):
    def __init__(self, configuration: ConfigurationManager) -> None:
        self.name = str(configuration.get("cluster.name", str, "?"))

    def where(self) -> Where:
        return Where(self.name, os.getpid(), f"http://{Server.get_local_ip()}:{Server.port}")


@implementation()
@health("/health")
class ClusterComponentImpl(AbstractComponent, ClusterComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        # the host the server binds (--host: this host's own address) is the one other hosts reach it at
        return [ChannelAddress(CHANNEL, f"http://{Server.get_local_ip()}:{port}")]


class AnnouncingEtcdRegistry(EtcdComponentRegistry):
    """etcd as the registry, saying on standard output when the drain has taken the instance out of it."""

    def deregister(self, descriptor: Any) -> None:
        super().deregister(descriptor)
        print("DEREGISTERED", flush=True)


@module(imports=[ServiceModule])
class InstanceModule:
    @create()
    def create_registry(self, configuration: ConfigurationManager) -> ComponentRegistry:
        return AnnouncingEtcdRegistry(
            configuration.get("cluster.etcd", str, "http://127.0.0.1:2379"),
            prefix=configuration.get("cluster.prefix", str, "/warpcall/"),
            ttl=configuration.get("cluster.ttl", int, 10),
            timeout=2.0,
            max_backoff=0.5,
        )

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(
            FastAPI(), manager, registry, deregister_delay=DEREGISTER_DELAY, grace_period=GRACE_PERIOD
        )
