"""Video rooms for 视频帮办 and live help, behind the `VideoRoomProvider` port.

The local provider makes no call anywhere: the room id follows from the room key (a booking or
a help request), and the join link carries a token signed for the one participant, so the same
request always answers the same room and link. A production provider (the district's video
platform) implements the same `create_room`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.bookings.booking import VideoRoom

VIDEO_LINK_KIND = "video-link"
# A join link serves the appointment (or the live help) it was made for, not later ones.
VIDEO_LINK_VALID_AFTER_START = timedelta(hours=4)


class LocalVideoRooms:
    def __init__(self, signer: Any, base_url: str = "https://video.qingpu.example"):
        self._signer = signer  # adapters.signing.Signer
        self._base_url = base_url.rstrip("/")

    def create_room(
        self, room_key: str, *, title: str, starts_at: datetime, participant_id: str
    ) -> VideoRoom:
        room_id = "vr-" + hashlib.sha256(room_key.encode()).hexdigest()[:16]
        token = self._signer.sign(
            VIDEO_LINK_KIND,
            {"r": room_id, "p": participant_id},
            starts_at + VIDEO_LINK_VALID_AFTER_START,
        )
        return VideoRoom(room_id=room_id, join_url=f"{self._base_url}/rooms/{room_id}?t={token}")
