"""Video rooms for 视频帮办 and live help, behind the `VideoRoomProvider` port.

The local provider makes no call anywhere: the room id follows from the room key (a booking or
a help request), and the join link carries a token signed for the one participant, so the same
request always answers the same room and link. A production provider (the district's video
platform) implements the same `create_room`.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from chalicelib.domain.bookings import VideoRoom


class LocalVideoRooms:
    def __init__(self, secret: str, base_url: str = "https://video.qingpu.example"):
        self._secret = secret.encode()
        self._base_url = base_url.rstrip("/")

    def create_room(
        self, room_key: str, *, title: str, starts_at: datetime, participant_id: str
    ) -> VideoRoom:
        room_id = "vr-" + hashlib.sha256(room_key.encode()).hexdigest()[:16]
        token = hmac.new(
            self._secret, f"{room_id}\n{participant_id}".encode(), hashlib.sha256
        ).hexdigest()[:24]
        return VideoRoom(room_id=room_id, join_url=f"{self._base_url}/rooms/{room_id}?t={token}")
