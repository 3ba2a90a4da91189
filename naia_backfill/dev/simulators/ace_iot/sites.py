"""The sites an :class:`~naia_backfill.dev.simulators.ace_iot.simulator.AceIotSimulator` serves by default.

``demo_site`` (client ``acme``) is small and odd: names with spaces, ``%``, ``(``, non-ASCII text; sub-second
phases; bursts of one point at one instant; odd value texts; points that are not configured and a retired
point that is in no list but still in the site's series; a daily outage 02:00-04:00 UTC with one-hour pages
(so a day has short and empty pages that carry a cursor); and about one UTC day in ten offline (404).

``ses_falls_city`` (client ``ses``) is seed 002's scale: 4,800 points at one sample a minute, 4,583 of them
configured (6,599,520 configured samples a day, a few hundred of them odd texts), names as long as ACE's.
"""

from __future__ import annotations

from naia_backfill.dev.simulators.ace_iot.data import AcePoint, AceSite

DEMO_SITE = "demo_site"
LARGE_SITE = "ses_falls_city"
LARGE_SITE_CONFIGURED = 4_583


def demo_site() -> AceSite:
    """The small site with every oddity (see the module docstring)."""
    p = "acme/demo_site/"
    points = (
        AcePoint(p + "AHU-1/Supply Air Temp", zero=12.0, span=8.0, description="Supply air temperature"),
        AcePoint(p + "AHU-1/Return Air Temp", zero=20.0, span=6.0, gap_fraction=0.05, phase_s=0.5),
        AcePoint(p + "AHU-1/Fan Status", interval_s=300.0, binary=True, object_type="binaryInput"),
        AcePoint(p + "AHU-1/Damper Position %", decimals=0, integer_text=True, zero=0.0, span=100.0, period_s=21_600.0),
        AcePoint(p + "Chiller 2/kW", interval_s=15.0, phase_s=0.25, decimals=2, zero=40.0, span=160.0),
        AcePoint(p + "Chiller 2/Flow (gpm)", interval_s=30.0, phase_s=7.5, zero=300.0, span=600.0, odd_every=7),
        AcePoint(p + "Chiller 2/Vibration", interval_s=2.5, phase_s=0.125, decimals=3, zero=0.0, span=2.0),
        AcePoint(p + "Gebäude A/Raum 1.07/Temperatur", interval_s=120.0, phase_s=13.0, zero=19.0, span=5.0),
        AcePoint(p + "Freezer 1/Temp", zero=-28.0, span=6.0, odd_every=50),
        AcePoint(p + "VAV 3-12/Zone Temp", zero=20.0, span=4.0, burst_every=10, burst_size=4),
        AcePoint(p + "VAV 3-12/Zone Temp Setpoint", interval_s=600.0, decimals=1, collect_enabled=False),
        AcePoint(p + "Lighting/Panel L1/Occupancy", binary=True, decimals=0, integer_text=True, collect_enabled=False),
        AcePoint(p + "Meter/Main kWh", interval_s=900.0, decimals=3, zero=125_000.0, span=2_000.0),
        AcePoint(p + "weather/temp", interval_s=3_600.0, phase_s=120.0, decimals=2, zero=5.0, span=15.0),
        AcePoint(p + "Old BAS/Point 17", interval_s=45.0, listed=False),
    )
    return AceSite(
        DEMO_SITE,
        "acme",
        points,
        nice_name="ACME Demo Building",
        address="1 Example Way, Springfield",
        latitude=39.78,
        longitude=-89.65,
        page_span_s=3_600.0,
        outage_s=(7_200.0, 14_400.0),
        offline_day_fraction=0.1,
    )


_AHU_OBJECTS = (
    ("SA_T", 1, 12.0, 8.0), ("RA_T", 1, 20.0, 6.0), ("MA_T", 1, 15.0, 10.0), ("OA_T", 1, -5.0, 30.0),
    ("SA_SP", 1, 13.0, 2.0), ("SF_SPD", 0, 20.0, 80.0), ("RF_SPD", 0, 20.0, 70.0), ("SF_STS", 0, 0.0, 1.0),
    ("CHW_VLV", 0, 0.0, 100.0), ("HW_VLV", 0, 0.0, 100.0), ("OA_DMPR", 0, 0.0, 100.0), ("SA_P", 2, 0.5, 1.5),
    ("SA_FLOW", 0, 2_000.0, 8_000.0), ("RA_RH", 1, 30.0, 30.0), ("FILTER_DP", 2, 0.1, 0.8), ("SA_CO2", 0, 400.0, 600.0),
    ("ECON_EN", 0, 0.0, 1.0), ("FRZ_STAT", 0, 0.0, 1.0), ("PH_T", 1, 10.0, 10.0), ("KW", 2, 5.0, 40.0),
)  # fmt: skip
_VAV_OBJECTS = (
    ("ZN_T", 1, 20.0, 4.0), ("ZN_SP", 1, 21.0, 2.0), ("DA_T", 1, 14.0, 16.0), ("DMPR_POS", 0, 0.0, 100.0),
    ("AIRFLOW", 0, 50.0, 900.0), ("AIRFLOW_SP", 0, 100.0, 800.0), ("HTG_VLV", 0, 0.0, 100.0), ("OCC", 0, 0.0, 1.0),
)  # fmt: skip
_FCU_OBJECTS = (
    ("ZN_T", 1, 20.0, 4.0), ("ZN_SP", 1, 21.0, 2.0), ("FAN_SPD", 0, 0.0, 100.0), ("CLG_VLV", 0, 0.0, 100.0),
    ("HTG_VLV", 0, 0.0, 100.0), ("FAN_STS", 0, 0.0, 1.0), ("DA_T", 1, 14.0, 16.0), ("RH", 1, 30.0, 30.0),
    ("CO2", 0, 400.0, 800.0), ("OCC", 0, 0.0, 1.0),
)  # fmt: skip


def large_site() -> AceSite:
    """4,800 points at one sample a minute, 4,583 configured: 20 AHUs, 500 VAVs and 40 FCUs, each device
    scraped at its own (often sub-second) offset in the minute, all points of a device at the same instant."""
    equipment = (
        [(f"AHU_{i}", _AHU_OBJECTS) for i in range(1, 21)]
        + [(f"VAV_{i // 100 + 1}_{i % 100:02d}", _VAV_OBJECTS) for i in range(500)]
        + [(f"FCU_{i}", _FCU_OBJECTS) for i in range(1, 41)]
    )
    points: list[AcePoint] = []
    for device, (equip, objects) in enumerate(equipment):
        address = f"192.168.96.{device % 200 + 2}"
        phase = round(device * 0.37 % 60.0, 3)
        for obj, decimals, zero, span in objects:
            i = len(points)
            points.append(
                AcePoint(
                    f"ses/{LARGE_SITE}/{address}/n4/FallsCity_CMC/C.Drivers.BacnetNetwork.{equip}.points.{obj}",
                    phase_s=phase,
                    decimals=decimals,
                    zero=zero,
                    span=span,
                    binary=span == 1.0,
                    odd_every=1_009 if obj == "AIRFLOW" else 0,
                    collect_enabled=not (i % 22 == 21 and i < 22 * (4_800 - LARGE_SITE_CONFIGURED)),
                    object_type="binaryInput" if span == 1.0 else "analogInput",
                    period_s=86_400.0 / (1 + device % 3),
                )
            )
    return AceSite(
        LARGE_SITE,
        "ses",
        tuple(points),
        nice_name="SES Falls City Hospital",
        address="1 Hospital Drive, Falls City, NE",
        latitude=40.0581,
        longitude=-95.6019,
    )


def default_sites() -> list[AceSite]:
    return [demo_site(), large_site()]
