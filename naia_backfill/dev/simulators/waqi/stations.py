"""The stations a :class:`~naia_backfill.dev.simulators.waqi.simulator.WaqiSimulator` serves by default.

Vietnam (seed 004) in +07:00, plus stations in zones with daylight saving (Paris), a negative offset (Los
Angeles) and a half-hour offset (Delhi), two with negative uids (citizen-network feeds), one without weather
keys or forecast, and one that stopped reporting on 2024-01-10 (its feed is stuck on its last reading).
"""

from __future__ import annotations

import datetime as dt

from naia_backfill.dev.simulators.waqi.data import Station

_VN_EPA = (("http://cem.gov.vn/", "Vietnam Center For Environment Monitoring Portal (cem.gov.vn)"),)
_US_EMBASSY = (("https://www.airnow.gov/", "Air Now - US EPA"),)


def default_stations() -> list[Station]:
    return [
        Station(1583, "Hanoi US Embassy, Vietnam (Đại sứ quán Mỹ, Hà Nội)", 21.0219, 105.8189, "Asia/Ho_Chi_Minh",
                "vietnam/hanoi/us-embassy", "hanoi", attributions=_US_EMBASSY, temp_c=24.0, level=1.3),
        Station(8688, "Hà Nội/Hoàn Kiếm, Vietnam", 21.0285, 105.8542, "Asia/Ho_Chi_Minh", "vietnam/ha-noi/hoan-kiem",
                attributions=_VN_EPA, temp_c=24.0, level=1.2, lag_min=35),
        Station(1584, "Ho Chi Minh City US Consulate, Vietnam", 10.7831, 106.7005, "Asia/Ho_Chi_Minh",
                "vietnam/ho-chi-minh/us-consulate", "hochiminh", attributions=_US_EMBASSY, temp_c=28.0),
        Station(13252, "Đà Nẵng/Sơn Trà, Vietnam", 16.0833, 108.2500, "Asia/Ho_Chi_Minh", "vietnam/da-nang/son-tra",
                "danang", attributions=_VN_EPA, temp_c=26.0, level=0.6, pollutants=("pm25", "pm10", "o3", "no2"),
                weather=(), forecast=False),
        Station(-475705, "Hải Phòng - Lê Chân (citizen sensor)", 20.8449, 106.6881, "Asia/Ho_Chi_Minh",
                "vietnam/hai-phong/le-chan-citizen", attributions=(("https://sensor.community/", "Sensor.Community"),),
                pollutants=("pm25", "pm10"), weather=("t", "h"), key_dropout=0.2, missing_fraction=0.15),
        Station(-122913, "Cần Thơ - Ninh Kiều (citizen sensor)", 10.0452, 105.7469, "Asia/Ho_Chi_Minh",
                "vietnam/can-tho/ninh-kieu-citizen", attributions=(("https://sensor.community/", "Sensor.Community"),),
                pollutants=("pm25", "pm10"), weather=("t", "h"),
                offline_from=dt.datetime(2024, 1, 10, tzinfo=dt.UTC)),
        Station(3095, "Paris Centre, France", 48.8566, 2.3522, "Europe/Paris", "france/paris/paris-centre", "paris",
                "FR", attributions=(("https://www.airparif.asso.fr/", "AirParif"),), temp_c=11.0, level=0.4),
        Station(243, "Los Angeles-North Main Street, USA", 34.0664, -118.2267, "America/Los_Angeles",
                "usa/california/los-angeles-north-main-street", "losangeles", "US", attributions=_US_EMBASSY,
                temp_c=18.0, level=0.6),
        Station(2553, "Delhi US Embassy, India", 28.5977, 77.1887, "Asia/Kolkata", "india/delhi/us-embassy", "delhi",
                "IN", attributions=_US_EMBASSY, temp_c=25.0, level=2.0),
    ]  # fmt: skip
