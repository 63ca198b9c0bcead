"""`kanal.v1.Layouts`: what a caller can compose, with each layout's schema and samples
(the default one, or one per locale: `GetLayoutRequest.sample_locale`)."""

from __future__ import annotations

import json

import grpc

from kanal.v1 import layouts_pb2, layouts_pb2_grpc
from server.api.convert import channel_to_proto
from server.compose.layouts import Layout, LayoutRegistry
from server.compose.locales import spelled_as
from server.errors import InvalidInput, quote


def layout_to_proto(layout: Layout, versions: list[str], full: bool,
                    sample_locale: str = "") -> layouts_pb2.Layout:
    """The layout as the API describes it; `full`: with its schema and the sample of
    `sample_locale` (empty: the default sample)."""
    message = layouts_pb2.Layout(
        id=layout.id,
        version=layout.version,
        versions=versions,
        kind=layout.kind.value,
        title=layout.title,
        locales=list(layout.locales),
        default_locale=layout.default_locale,
        channels=[channel_to_proto(c) for c in layout.channels],
        sample_locales=list(layout.sample_locales),
    )
    if full:
        message.schema_json = json.dumps(layout.schema, ensure_ascii=False, indent=2)
        message.sample_json = layout.sample_data(sample_locale or None)
    return message


class LayoutsServicer(layouts_pb2_grpc.LayoutsServicer):
    def __init__(self, layouts: LayoutRegistry):
        self.layouts = layouts

    def ListLayouts(self, request: layouts_pb2.ListLayoutsRequest,
                    context: grpc.ServicerContext) -> layouts_pb2.ListLayoutsResponse:
        return layouts_pb2.ListLayoutsResponse(layouts=[
            layout_to_proto(layout, self.layouts.versions(layout.id), full=False)
            for layout in self.layouts.latest()
        ])

    def GetLayout(self, request: layouts_pb2.GetLayoutRequest,
                  context: grpc.ServicerContext) -> layouts_pb2.Layout:
        if not request.layout_id:
            raise InvalidInput.field("layout_id", "is required")
        layout = self.layouts.get(request.layout_id, request.version or None)
        wanted = spelled_as(request.sample_locale, layout.sample_locales)  # any case
        if wanted and wanted not in layout.sample_locales:
            raise InvalidInput.field("sample_locale", f"{layout.ref} has no sample for "
                                     f"{quote(wanted)}; its samples: "
                                     f"{', '.join(layout.sample_locales) or 'only the default'}")
        return layout_to_proto(layout, self.layouts.versions(layout.id), full=True,
                               sample_locale=wanted)
