"""The composition root: settings -> a running Kanal (S3, index, services, gRPC server).

`KanalServer` is what `kanal serve` runs and what the integration tests start in-process,
so the tests exercise the same wiring as production. Start order: embedded S3 (unless an
external endpoint is configured), the archive bucket with object lock, the index schema,
then the gRPC server. Stop order is the reverse, and the embedded S3 process never
outlives the server.

The gRPC server runs on an event loop of its own thread (`server.grpc_server`); the
credentials a server makes for itself in its state dir are `server.credentials`'.
"""

from __future__ import annotations

import ctypes.util
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from archive.embedded import EmbeddedS3
from archive.errors import ArchiveUnavailable, EmbeddedS3Error
from archive.index import DocumentIndex
from archive.retention import RetentionPolicy
from kanal.v1 import (
    deliveries_pb2_grpc,
    documents_pb2_grpc,
    events_pb2_grpc,
    jobs_pb2_grpc,
    layouts_pb2_grpc,
    portal_pb2_grpc,
    printshop_pb2_grpc,
    surveys_pb2_grpc,
)
from server import auth, logs, metrics, tempdirs
from server import state as server_state
from server.api.admission import Lanes, Limits, RenderQueueExit
from server.api.deliveries import DeliveriesServicer
from server.api.documents import DocumentsServicer
from server.api.events import CustomersServicer, EventsServicer
from server.api.interceptor import KanalInterceptor
from server.api.jobs import JobsServicer
from server.api.layouts import LayoutsServicer
from server.api.portal import ArchiveAdminServicer, PortalServicer
from server.api.printshop import PrintShopServicer
from server.api.rpc_metrics import observe_rpc
from server.api.surveys import SurveysServicer
from server.channels import DocumentRenderer, Renderers
from server.channels.pool import RenderPool
from server.compose.layouts import LayoutRegistry
from server.compose.rules import layout_rules
from server.config import ConfigError, S3Settings, Settings
from server.credentials import api_keys, embedded_credentials
from server.delivery.stage import DeliverySettings, DeliveryStage
from server.documents import DocumentService
from server.events.publish import EventService, publish_event
from server.events.types import EventTypes
from server.grpc_server import SERVICE_NAMES, GrpcServer
from server.health import ARCHIVE, INDEX, QUEUE, DependencyMonitor, HealthServicer
from server.jobs.database import CHUNK_SIZE
from server.jobs.gauges import DESCRIBED as JOB_GAUGES
from server.jobs.gauges import job_gauges
from server.jobs.queue import QUEUE_NAME, LocalQueue, RabbitQueue
from server.jobs.runner import JobRunner
from server.jobs.stalls import stall_seconds
from server.jobs.store import JobStore
from server.jobs.worker import WorkerConfig
from server.journeys.definition import JourneyError
from server.journeys.stage import JourneyStage
from server.measured_store import MeasuredArchiveStore
from server.portal import (
    ArchiveAdminService,
    PortalService,
    customer_token_secrets,
    page_token_secret,
)
from server.printing.batches import BatchService
from server.printing.closer import BatchCloser
from server.printing.queue import PrintQueue, PrintSettings
from server.processes import settle_heap
from server.surveys import SurveyStage
from server.surveys.experiments import CampaignExposures
from server.surveys.settings import SurveySettings

log = logs.get_logger("kanal")
_heap_settled = False  # this process's heap, by its first server (server.processes)


def _settle_heap_once() -> None:
    """The first server started in this process freezes what is alive once it serves (the
    modules, layouts, engines, clients and pools live as long as the process): full
    collections of the garbage collector then skip it, where each used to hold the GIL
    for 110-130 ms (measured here), stalling every call in flight. Once per process: a
    test run starts many servers, and only the first one's objects stay frozen."""
    global _heap_settled
    if not _heap_settled:
        _heap_settled = True
        settle_heap()


def harfbuzz_subset_available() -> bool:
    """WeasyPrint silently falls back to a much slower font subsetter without it."""
    return ctypes.util.find_library("harfbuzz-subset") is not None


class KanalServer:
    def __init__(self, settings: Settings,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        """`clock`: the journeys' time (events' received-at, timers, the contact policy);
        tests inject one to move time without sleeping."""
        self.settings = settings
        self.clock = clock
        self.embedded_s3: EmbeddedS3 | None = None
        self.health = HealthServicer()
        self.grpc_server = GrpcServer(self.health)
        self.metrics: metrics.MetricsEndpoint | None = None
        self._gauges: int | None = None
        self.limits: Limits | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        settings = self.settings
        if not harfbuzz_subset_available():
            log.warning(
                "libharfbuzz-subset is missing: WeasyPrint falls back to a much slower font "
                "subsetter; install the Debian package libharfbuzz-subset0"
            )
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self._sweep_temporary_folders()
        try:
            s3 = self._start_s3(settings.s3)
            self.store = MeasuredArchiveStore(endpoint_url=s3.endpoint, bucket=s3.bucket,
                                      access_key=s3.access_key, secret_key=s3.secret_key,
                                      region=s3.region,
                                      on_write_failures=self._archive_writes_failing)
            self.store.ensure_bucket()
            self.index = DocumentIndex(settings.resolved_index_url)
            self.index.create_schema()
            self.layouts = LayoutRegistry(settings.layouts_dir)
            try:
                print_settings = PrintSettings.from_dict(settings.printing)
                for layout in self.layouts.every_version():  # their inserts, as the settings'
                    print_settings.check_rules(layout_rules(layout.manifest),
                                               f"{layout.ref} manifest rules")
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
            self.print_queue = PrintQueue(self.index, print_settings)  # own tables, not the
            self.print_queue.create_schema()  # archive's (nor its migrations)
            self.print_batches = BatchService(self.print_queue, self.store)
            try:
                delivery_settings = DeliverySettings.from_dict(settings.delivery)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
            self.delivery = DeliveryStage(delivery_settings, self.index, settings.state_dir)
            self.delivery.create_schema()  # own tables, like the print queue's
            self.print_batches.on_printed = lambda conn, info, documents: (
                self.delivery.printed(conn, info.tenant, documents, info.batch_id,
                                      info.printshop))
            self.renderers = self._renderers()
            self.surveys = self._surveys(delivery_settings)
            self.documents = DocumentService(
                self.layouts, RenderQueueExit(self.renderers), self.store, self.index,
                RetentionPolicy.from_dict(settings.retention)
                if settings.retention else RetentionPolicy.default(),
                max_data_bytes=settings.max_data_bytes, plan_rules=settings.plan,
                print_queue=self.print_queue, rules=print_settings.rules,
                delivery=self.delivery,
                exposures=CampaignExposures(self.surveys.store).statements,
            )
            self.surveys.service.documents = self.documents
            if delivery_settings.dispatch:
                try:
                    self.delivery.start(self.store, self.documents.render_fallback,
                                        {"print_queue": self.print_queue,
                                         "inbound_sms": self.surveys.service.inbound_sms})
                except ValueError as exc:
                    raise ConfigError(str(exc)) from exc
            self._start_jobs(s3)
            self.surveys.start(post_webhooks=delivery_settings.dispatch)
            self._start_journeys()
            self._start_print_closer()
            self._start_grpc()
            self._start_health()
            self._start_metrics()
        except BaseException:
            self.stop()
            raise
        server_state.write(settings.state_dir, address=self.address,
                           s3_endpoint=s3.endpoint if settings.s3.embedded else None,
                           metrics=self.metrics.url if self.metrics else None)
        _settle_heap_once()
        log.info("kanal serving", listen=self.address, s3=self.store.endpoint_url,
                 survey_pages=self.surveys.pages.address if self.surveys.pages else "off",
                 embedded_s3=settings.s3.embedded, layouts=len(self.layouts.latest()),
                 metrics=self.metrics.url if self.metrics else "off")

    def _sweep_temporary_folders(self) -> None:
        """What processes that ended without cleaning up left in the state dir's temporary
        folder (server.tempdirs): a killed server's, its render and bulk processes'."""
        removed = tempdirs.sweep(self.settings.state_dir)
        if removed:
            log.info("temporary folders of ended processes removed", count=len(removed),
                     folder=str(tempdirs.root(self.settings.state_dir)))

    def _surveys(self, delivery_settings: DeliverySettings) -> SurveyStage:
        """NPS surveys and A/B tests (server/surveys): own tables; follow-ups go to the
        delivery tenants' webhook URLs; the response page on `[surveys] listen`."""
        try:
            surveys = SurveyStage(
                SurveySettings.from_dict(self.settings.surveys), self.index, None,
                self.layouts, self.settings.state_dir, delivery_settings.tenants,
                webhook_poll_seconds=delivery_settings.poll_seconds)
        except (ValueError, OSError) as exc:
            raise ConfigError(f"[surveys]: {exc}") from exc
        surveys.create_schema()
        return surveys

    def _renderers(self) -> DocumentRenderer:
        """The real-time lane: render in a warm process pool (see server/channels/pool.py),
        or in this process when render_workers = 0."""
        if self.settings.render_workers == 0:
            return Renderers()
        pool = RenderPool(self.settings.layouts_dir, self.settings.render_workers,
                          state_dir=self.settings.state_dir)
        pool.start()
        return pool

    def _start_s3(self, s3: S3Settings) -> S3Settings:
        if not s3.embedded:
            return s3
        access_key, secret_key = embedded_credentials(self.settings.state_dir)
        self.embedded_s3 = EmbeddedS3(self.settings.state_dir / "s3",
                                      access_key=access_key, secret_key=secret_key,
                                      on_exit=self._s3_exited)
        self.embedded_s3.start()
        return S3Settings(endpoint=self.embedded_s3.endpoint_url, bucket=s3.bucket,
                          access_key=access_key, secret_key=secret_key, region=s3.region)

    def _start_jobs(self, s3: S3Settings) -> None:
        """Bulk jobs: their tables beside the index, and the runner that feeds the chunks to
        worker processes (KANAL_JOB_WORKERS, default one per core) or, with
        KANAL_RABBITMQ_URL set, to `kanal worker` processes through RabbitMQ."""
        settings = self.settings
        self.jobs = JobStore(settings.resolved_index_url, chunk_size=int(
            os.environ.get("KANAL_JOB_CHUNK_SIZE", "0")) or CHUNK_SIZE)
        self.jobs.create_schema()
        self.worker_config = WorkerConfig(
            index_url=settings.resolved_index_url, s3_endpoint=s3.endpoint or "",
            s3_bucket=s3.bucket, s3_access_key=s3.access_key, s3_secret_key=s3.secret_key,
            s3_region=s3.region, layouts_dir=settings.layouts_dir,
            retention=dict(settings.retention), max_data_bytes=settings.max_data_bytes,
            plan=dict(settings.plan), printing=dict(settings.printing),
            delivery=dict(settings.delivery), state_dir=settings.state_dir.resolve(),
        )
        # a job still receiving after its stream's time limit was left by a dead server
        abandoned_after = timedelta(seconds=self._limits().submit_max_seconds + 60)
        stall_after = self._stall_seconds()
        rabbitmq = os.environ.get("KANAL_RABBITMQ_URL")
        if rabbitmq:
            queue = RabbitQueue(rabbitmq, os.environ.get("KANAL_RABBITMQ_QUEUE", QUEUE_NAME))
            self.job_runner = JobRunner(self.jobs, queue, track_inflight=False,
                                        abandoned_after=abandoned_after,
                                        stall_seconds=stall_after)
        else:
            workers = int(os.environ.get("KANAL_JOB_WORKERS", "0")) or None
            # the workers' refused archive writes count as the server's (write health)
            self.job_runner = JobRunner(self.jobs, LocalQueue(self.worker_config, workers),
                                        abandoned_after=abandoned_after,
                                        stall_seconds=stall_after,
                                        on_archive_writes=self.store.write_failures.replay)
        self.job_runner.start()

    def _stall_seconds(self) -> float:
        """`[jobs] stall_seconds` (server.jobs.stalls); ConfigError when it is no number of
        seconds above 0."""
        try:
            return stall_seconds(self.settings.jobs, os.environ)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def _start_journeys(self) -> None:
        """Events (server.events) and the journeys they trigger (server.journeys): their
        tables beside the index; the timers' thread; sends go to the bulk jobs above."""
        settings = self.settings
        try:
            schemas = settings.events.get("schemas_dir")
            self.events = EventService(self.index.engine,
                                       EventTypes(Path(schemas) if schemas else None),
                                       clock=lambda: self.clock())
            self.journeys = JourneyStage(settings.journeys, self.index.engine, self.events,
                                         self.layouts, self.jobs,
                                         notify_jobs=self.job_runner.notify,
                                         clock=lambda: self.clock())
        except (JourneyError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc
        self.events.create_schema()
        # answers and detractors' follow-ups become events a journey can start from
        events = self.events
        self.surveys.service.on_event = (
            lambda tenant, customer_id, event_type, data, occurred_at, key: publish_event(
                events, tenant=tenant, customer_id=customer_id, event_type=event_type,
                data=data, occurred_at=occurred_at, idempotency_key=key))
        self.journeys.create_schema()
        # SendSurvey goes through the journeys' contact policy (caps, opt-outs, contact_log)
        self.surveys.service.policy = self.journeys.policy
        # a consent withdrawn or an opt-out told after a send was planned stops what waits
        self.delivery.current_contacts = self.journeys.current_contacts
        self.journeys.start()

    def _start_print_closer(self) -> None:
        """Print batches close by size and cut-off in this thread (server.printing.closer),
        on the server's clock; never inside a call (ListPrintBatches only reads)."""
        self.print_closer = BatchCloser(self.print_batches, lambda: self.clock(),
                                        self.print_queue.settings.close_poll_seconds)
        self.print_closer.start()

    def _start_metrics(self) -> None:
        """The Prometheus endpoint (server.metrics) and the job gauges it reads."""
        try:
            self.metrics = metrics.serve_metrics(self.settings.metrics_listen)
        except OSError as exc:
            raise ConfigError(str(exc)) from exc
        if self.metrics is not None and self.metrics.note:
            log.warning("metrics on another port", url=self.metrics.url, why=self.metrics.note)
        self._gauges = metrics.gauges.add(job_gauges(self.jobs), JOB_GAUGES)

    def _host(self) -> str:
        return self.settings.listen.rpartition(":")[0]

    def _limits(self) -> Limits:
        """The `[limits]` settings, read once (ConfigError when they are wrong)."""
        if self.limits is None:
            try:
                self.limits = Limits.from_dict(self.settings.limits)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        return self.limits

    def _start_grpc(self) -> None:
        limits = self._limits()
        render_workers = (self.renderers.workers if isinstance(self.renderers, RenderPool)
                          else 1)
        self.lanes = Lanes(limits, render_workers)
        self.grpc_server.start(
            self.settings.listen,
            lambda: [KanalInterceptor(auth.Authenticator(api_keys(self.settings)),
                                      self.lanes, limits, observers=[observe_rpc])],
            self._add_servicers, reflection_enabled=self.settings.reflection_enabled)

    def _add_servicers(self, server: grpc.aio.Server) -> None:
        """Kanal's API services, on the server's event loop."""
        documents_pb2_grpc.add_DocumentsServicer_to_server(
            DocumentsServicer(self.documents), server)
        layouts_pb2_grpc.add_LayoutsServicer_to_server(LayoutsServicer(self.layouts), server)
        printshop_pb2_grpc.add_PrintShopServicer_to_server(
            PrintShopServicer(self.print_batches), server)
        self.jobs_servicer = JobsServicer(self.jobs, self.job_runner, self.layouts,
                                          self.settings.max_data_bytes,
                                          self.print_queue.settings.profiles)
        jobs_pb2_grpc.add_JobsServicer_to_server(self.jobs_servicer, server)
        portal_pb2_grpc.add_PortalServicer_to_server(
            PortalServicer(self._portal(), self.delivery), server)
        self.deliveries_servicer = DeliveriesServicer(self.delivery)
        deliveries_pb2_grpc.add_DeliveriesServicer_to_server(self.deliveries_servicer, server)
        surveys_pb2_grpc.add_SurveysServicer_to_server(SurveysServicer(self.surveys.service),
                                                       server)
        events_pb2_grpc.add_EventsServicer_to_server(EventsServicer(self.events), server)
        events_pb2_grpc.add_CustomersServicer_to_server(CustomersServicer(self.journeys), server)
        portal_pb2_grpc.add_ArchiveAdminServicer_to_server(
            ArchiveAdminServicer(ArchiveAdminService(self.store, self.index)), server)

    def _start_health(self) -> None:
        """Health per dependency (server/health.py), published on the gRPC health service."""
        self.monitor = DependencyMonitor(
            {ARCHIVE: self._archive_probe, INDEX: self.index.ping,
             QUEUE: self.job_runner.queue.ping}, self.grpc_server.publish_health,
            services=SERVICE_NAMES)
        self.monitor.start()

    def _s3_exited(self) -> None:
        if getattr(self, "monitor", None) is not None:
            self.monitor.poke()  # NOT_SERVING now, not at the next probe

    def _archive_writes_failing(self) -> None:
        """The archive's puts keep failing on S3's side (archive.write_health; the bulk
        workers' puts count too, through the job runner's `on_archive_writes`): health says
        so now, and an embedded SeaweedFS is restarted (at most once per its back-off:
        after a full disk its filer refused every write until restarted). A production S3
        gets only the health signal. Called from a put's thread: returns at once."""
        if self.embedded_s3 is not None:
            self.embedded_s3.restart_soon(self.store.write_failures.reason)
        if getattr(self, "monitor", None) is not None:
            self.monitor.poke()

    def _archive_probe(self) -> None:
        """Health of `kanal.archive`: the store's ping, and for an embedded SeaweedFS that
        refuses writes for want of room, that cause (archive.weed_capacity), which its
        S3 answers (500 InternalError) do not name."""
        if self.embedded_s3 is not None and not self.embedded_s3.running:
            raise EmbeddedS3Error("the embedded SeaweedFS is not running")
        try:
            self.store.ping()
        except ArchiveUnavailable as exc:
            problem = self.embedded_s3 and self.embedded_s3.capacity_problem()
            if problem:
                raise ArchiveUnavailable(f"{exc}; {problem}") from exc
            raise

    def _portal(self) -> PortalService:
        portal = self.settings.portal
        try:
            return PortalService(
                self.store, self.index,
                customer_token_secrets=customer_token_secrets(
                    portal.get("customer_token_secrets", {}), self.settings.state_dir,
                    development=not self.settings.api_keys),
                page_token_secret=page_token_secret(portal.get("page_token_secret"),
                                                    self.settings.state_dir),
                max_token_seconds=int(portal.get("customer_token_max_seconds", 0)) or None,
                page_token_seconds=int(portal.get("page_token_seconds", 0)) or None,
            )
        except ValueError as exc:  # a token secret too short to sign with
            raise ConfigError(str(exc)) from exc

    def stop(self, grace: float = 5.0) -> None:
        server_state.remove(self.settings.state_dir)
        if self._gauges is not None:
            metrics.gauges.remove(self._gauges)
            self._gauges = None
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
        if getattr(self, "monitor", None) is not None:
            self.monitor.stop()
            self.monitor = None
        if getattr(self, "jobs_servicer", None) is not None:
            self.jobs_servicer.stop()  # end WatchJob streams so the server can stop
        if getattr(self, "deliveries_servicer", None) is not None:
            self.deliveries_servicer.stop()  # and WatchDeliveries streams
        if getattr(self, "print_closer", None) is not None:
            self.print_closer.stop()  # between two batches; a half-built one is rebuilt
            self.print_closer = None
        if getattr(self, "journeys", None) is not None:
            self.journeys.stop()
            self.journeys = None
        if getattr(self, "job_runner", None) is not None:
            self.job_runner.stop()
            self.job_runner = None
        self.grpc_server.stop(grace)
        if getattr(self, "documents", None) is not None:
            self.documents.abandonments.stop()  # refused calls' markers: last tries
        if getattr(self, "lanes", None) is not None:
            self.lanes.close()
        if getattr(self, "surveys", None) is not None:
            self.surveys.stop()
        if getattr(self, "delivery", None) is not None:
            self.delivery.stop()
        if isinstance(getattr(self, "renderers", None), RenderPool):
            self.renderers.close()
        if self.embedded_s3 is not None:
            self.embedded_s3.stop()
            self.embedded_s3 = None
        self._sweep_temporary_folders()  # the pools' processes have ended, killed ones too
        log.info("kanal stopped")

    def wait(self) -> None:
        """Block until the server has stopped."""
        self.grpc_server.wait()

    @property
    def port(self) -> int | None:
        """The gRPC port listened on (None before start)."""
        return self.grpc_server.port

    @property
    def address(self) -> str:
        return f"{self._host()}:{self.port}"

    def __enter__(self) -> KanalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
