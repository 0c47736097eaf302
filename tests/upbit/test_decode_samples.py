"""The verbatim sample messages of upbit-api.md section 5 decode to exact values.

Samples are copied byte for byte from the doc (WebSocket 5.1, REST 5.2, errors 2.9 and 3.8), with
two documented exceptions: the REST orderbook sample's ``…28 more…`` is cut, and the 2020 SIMPLE
trade, printed by its source as a Python dict, is turned into JSON here.
"""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime

import pytest

from upbit_pipeline.upbit.decode import (
    channel_of,
    decode_candles_rest,
    decode_frame,
    decode_markets,
    decode_orderbooks_rest,
    decode_rest_error,
    decode_tickers_rest,
    decode_trades_rest,
)
from upbit_pipeline.upbit.errors import MalformedFrameError
from upbit_pipeline.upbit.models import (
    Candle,
    ErrorFrame,
    Market,
    MarketEvent,
    Orderbook,
    OrderbookUnit,
    StatusFrame,
    Ticker,
    Trade,
)

# --- 5.1 WebSocket -------------------------------------------------------------------------------

TICKER_2025_04_20 = b'{"type":"ticker","code":"KRW-BTC","opening_price":122720000.00000000,"high_price":123135000.00000000,"low_price":122677000.00000000,"trade_price":122902000.00000000,"prev_closing_price":122720000.00000000,"acc_trade_price":19699800600.2538100000000000,"change":"RISE","change_price":182000.00000000,"signed_change_price":182000.00000000,"change_rate":0.0014830508,"signed_change_rate":0.0014830508,"ask_bid":"ASK","trade_volume":0.00020372,"acc_trade_volume":160.18173252,"trade_date":"20250420","trade_time":"063055","trade_timestamp":1745130655618,"acc_ask_volume":80.07639388,"acc_bid_volume":80.10533864,"highest_52_week_price":163325000.00000000,"highest_52_week_date":"2025-01-20","lowest_52_week_price":72100000.00000000,"lowest_52_week_date":"2024-08-05","market_state":"ACTIVE","is_trading_suspended":false,"delisting_date":null,"market_warning":"NONE","timestamp":1745130655652,"acc_trade_price_24h":67648718116.20854000,"acc_trade_volume_24h":549.81614150,"stream_type":"SNAPSHOT"}'  # noqa: E501
TICKER_2025_09_26 = b'{"type":"ticker","code":"KRW-BTC","opening_price":158219000.00000000,"high_price":159278000.00000000,"low_price":157588000.00000000,"trade_price":158200000.00000000,"prev_closing_price":158200000.00000000,"acc_trade_price":95088751392.9099200000000000,"change":"EVEN","change_price":0E-8,"signed_change_price":0E-8,"change_rate":0,"signed_change_rate":0,"ask_bid":"ASK","trade_volume":0.00011188,"acc_trade_volume":600.09226312,"trade_date":"20250926","trade_time":"082646","trade_timestamp":1758875206936,"acc_ask_volume":341.67996226,"acc_bid_volume":258.41230086,"highest_52_week_price":169900000.00000000,"highest_52_week_date":"2025-08-14","lowest_52_week_price":80635000.00000000,"lowest_52_week_date":"2024-10-10","market_state":"ACTIVE","is_trading_suspended":false,"delisting_date":null,"market_warning":"NONE","timestamp":1758875206974,"acc_trade_price_24h":331188513477.17233,"acc_trade_volume_24h":2083.83396972,"stream_type":"REALTIME"}'  # noqa: E501
TICKER_SIMPLE_LIST_DOC = b'[{"ty":"ticker","cd":"KRW-BTC","op":148500000.0,"hp":149064000.0,"lp":148050000.0,"tp":148956000.0,"pcp":148500000.0,"atp":16115868486.03173,"c":"RISE","cp":456000.0,"scp":456000.0,"cr":0.0030707071,"scr":0.0030707071,"ab":"BID","tv":0.0602652,"atv":108.51228784,"tdt":"20250707","ttm":"022055","ttms":1751854855934,"aav":36.9943567,"abv":71.51793114,"h52wp":163325000.0,"h52wdt":"2025-01-20","st":"SNAPSHOT"}]'  # noqa: E501
TRADE_2026_09_02 = b'{"type":"trade","code":"KRW-BTC","timestamp":1788335180423,"trade_date":"2026-09-02","trade_time":"07:46:20","trade_timestamp":1788335180377,"trade_price":106691000.00000000,"trade_volume":0.00009372,"ask_bid":"ASK","prev_closing_price":107005000.00000000,"change":"FALL","change_price":314000.00000000,"sequential_id":17883351803770004,"best_ask_price":106705000,"best_ask_size":0.00906333,"best_bid_price":106691000,"best_bid_size":0.00702247,"stream_type":"SNAPSHOT"}'  # noqa: E501
TRADE_JSON_LIST_DOC = b"""[{"type":"trade","code":"KRW-BTC","timestamp":1730336862082,"trade_date":"2024-10-31","trade_time":"01:07:42","trade_timestamp":1730336862047,"trade_price":100473000.00000000,"trade_volume":0.00014208,"ask_bid":"BID","prev_closing_price":100571000.00000000,"change":"FALL","change_price":98000.00000000,"sequential_id":17303368620470000,"best_ask_price":100473000,"best_ask_size":0.43139478,"best_bid_price":100465000,"best_bid_size":0.01990656,"stream_type":"SNAPSHOT"},
 {"type":"trade","code":"KRW-ETH","timestamp":1730336862120,"trade_date":"2024-10-31","trade_time":"01:07:42","trade_timestamp":1730336862080,"trade_price":3700000.00000000,"trade_volume":0.02207517,"ask_bid":"BID","prev_closing_price":3695000.00000000,"change":"RISE","change_price":5000.00000000,"sequential_id":17303368620800006,"best_ask_price":3700000,"best_ask_size":0.39101775,"best_bid_price":3699000,"best_bid_size":0.13499454,"stream_type":"SNAPSHOT"}]"""  # noqa: E501
TRADE_SIMPLE_2020_PYDICT = "{'ty':'trade','cd':'KRW-BTC','tp':6759000.0,'tv':0.03243003,'tms':1584257228806,'ttms':1584257228000,'ab':'BID','cp':64000.0,'pcp':6823000.0,'sid':1584257228000000,'st':'SNAPSHOT','td':'2020-03-15','ttm':'07:27:08','c':'FALL'}"  # noqa: E501
ORDERBOOK_SNAPSHOT = b'{"type":"orderbook","code":"KRW-BTC","timestamp":1790134742106,"total_ask_size":2.51469375,"total_bid_size":1.63815297,"orderbook_units":[{"ask_price":1.16539E8,"bid_price":1.16538E8,"ask_size":0.02054761,"bid_size":0.08120946},{"ask_price":1.16542E8,"bid_price":1.16537E8,"ask_size":0.00077720,"bid_size":0.01129382}],"stream_type":"SNAPSHOT","level":0}'  # noqa: E501
ORDERBOOK_REALTIME = b'{"type":"orderbook","code":"KRW-BTC","timestamp":1790134743006,"total_ask_size":1.83604250,"total_bid_size":1.62306717,"orderbook_units":[{"ask_price":1.16539E8,"bid_price":1.16538E8,"ask_size":0.02054761,"bid_size":0.06612366},{"ask_price":1.16542E8,"bid_price":1.16537E8,"ask_size":0.00077720,"bid_size":0.01129382}],"stream_type":"REALTIME","level":0}'  # noqa: E501
ORDERBOOK_SIMPLE = b'{"ty":"orderbook","cd":"KRW-BTC","tms":1790134773006,"tas":0.48514983,"tbs":2.2403413,"obu":[{"ap":116606000,"bp":116534000,"as":0.06288509,"bs":7.9276E-4},{"ap":116609000,"bp":116521000,"as":5.0E-4,"bs":0.01624318}],"st":"SNAPSHOT","lv":0}'  # noqa: E501
ORDERBOOK_SIMPLE_LIST = b'[{"ty":"orderbook","cd":"KRW-BTC","tms":1751855921432,"tas":17.12835169,"tbs":4.81969018,"obu":[{"ap":148880000,"bp":148830000,"as":0.37765316,"bs":0.34809059},{"ap":148890000,"bp":148820000,"as":0.64120607,"bs":0.02744065},{"ap":148900000,"bp":148810000,"as":0.70085443,"bs":0.04667566}],"lv":10000}]'  # noqa: E501
CANDLE_DEFAULT = b'{"type":"candle.1s","code":"KRW-BTC","candle_date_time_utc":"2025-01-02T04:28:05","candle_date_time_kst":"2025-01-02T13:28:05","opening_price":142009000.00000000,"high_price":142009000.00000000,"low_price":142009000.00000000,"trade_price":142009000.00000000,"candle_acc_trade_volume":0.00606119,"candle_acc_trade_price":860743.5307100000000000,"timestamp":1735792085824,"stream_type":"REALTIME"}'  # noqa: E501
CANDLE_SIMPLE_LIST = b'[{"ty":"candle.1s","cd":"KRW-BTC","cdttmu":"2025-07-07T02:29:24","cdttmk":"2025-07-07T11:29:24","op":149000000.0,"hp":149000000.0,"lp":149000000.0,"tp":149000000.0,"catv":0.00033557,"catp":49999.93,"tms":1751855364161,"st":"SNAPSHOT"}]'  # noqa: E501
STATUS_UP = b'{"status":"UP"}'
WS_ERRORS = [
    (
        '{"error":{"name":"NO_TICKET","message":"티켓이 존재하지 않거나, 유효하지 않습니다."}}',
        ErrorFrame("NO_TICKET", "티켓이 존재하지 않거나, 유효하지 않습니다."),
    ),
    (
        '{"error":{"message":"nope 은 지원하지 않는 타입입니다.","name":"INVALID_PARAM"}}',
        ErrorFrame("INVALID_PARAM", "nope 은 지원하지 않는 타입입니다."),
    ),
    (
        '{"error":{"message":"Format 이 맞지 않습니다.","name":"WRONG_FORMAT"}}',
        ErrorFrame("WRONG_FORMAT", "Format 이 맞지 않습니다."),
    ),
]
LIST_SUBSCRIPTIONS = b'{"method":"LIST_SUBSCRIPTIONS","result":[{"type":"ticker","codes":["KRW-BTC","KRW-ETH"]},{"type":"orderbook","codes":["KRW-BTC","KRW-ETH"],"level":0}],"ticket":"\xe2\x80\xa6"}'  # noqa: E501

# --- 5.2 REST ------------------------------------------------------------------------------------

REST_MINUTES = b'[{"market":"KRW-BTC","candle_date_time_utc":"2026-03-11T14:40:00","candle_date_time_kst":"2026-03-11T23:40:00","opening_price":103600000.00000000,"high_price":103600000.00000000,"low_price":103425000.00000000,"trade_price":103460000.00000000,"timestamp":1773240059132,"candle_acc_trade_price":164899503.14206000,"candle_acc_trade_volume":1.59335120,"unit":1}]'  # noqa: E501
REST_SECONDS = b'[{"market":"KRW-BTC","candle_date_time_utc":"2026-03-11T14:40:58","candle_date_time_kst":"2026-03-11T23:40:58","opening_price":103460000.00000000,"high_price":103460000.00000000,"low_price":103458000.00000000,"trade_price":103458000.00000000,"timestamp":1773240058227,"candle_acc_trade_price":2654722.02446000,"candle_acc_trade_volume":0.02565970}]'  # noqa: E501
REST_DAYS = b'[{"market":"KRW-BTC","candle_date_time_utc":"2026-03-11T00:00:00","candle_date_time_kst":"2026-03-11T09:00:00","opening_price":102417000.00000000,"high_price":103988000.00000000,"low_price":101150000.00000000,"trade_price":103460000.00000000,"timestamp":1773240059132,"candle_acc_trade_price":104890599315.22821000,"candle_acc_trade_volume":1024.30999241,"prev_closing_price":102417000.00000000,"change_price":1043000.00000000,"change_rate":0.0101838562}]'  # noqa: E501
REST_WEEKS = b'[{"market":"KRW-BTC","candle_date_time_utc":"2026-03-09T00:00:00","candle_date_time_kst":"2026-03-09T09:00:00","opening_price":97845000.00000000,"high_price":104500000.00000000,"low_price":97668000.00000000,"trade_price":103460000.00000000,"timestamp":1773240059132,"candle_acc_trade_price":509244554633.83154000,"candle_acc_trade_volume":5004.32824461,"first_day_of_period":"2026-03-09"}]'  # noqa: E501
REST_MONTHS = b'[{"market":"KRW-BTC","candle_date_time_utc":"2026-03-01T00:00:00","candle_date_time_kst":"2026-03-01T09:00:00","opening_price":97626000.00000000,"high_price":107547000.00000000,"low_price":95100000.00000000,"trade_price":103458000.00000000,"timestamp":1773240058227,"candle_acc_trade_price":2511125524827.97360000,"candle_acc_trade_volume":24783.48727285,"first_day_of_period":"2026-03-01"}]'  # noqa: E501
REST_TRADES = b'[{"market":"KRW-BTC","trade_date_utc":"2026-03-11","trade_time_utc":"14:40:59","timestamp":1773240059095,"trade_price":103460000.00000000,"trade_volume":0.00400000,"prev_closing_price":102417000.00000000,"change_price":1043000.00000000,"ask_bid":"ASK","sequential_id":17732400590950000}]'  # noqa: E501
REST_TICKER = b'[{"market":"KRW-BTC","trade_date":"20260311","trade_time":"144058","trade_date_kst":"20260311","trade_time_kst":"234058","trade_timestamp":1773240058930,"opening_price":102417000.0,"high_price":103988000.0,"low_price":101150000.0,"trade_price":103493000.0,"prev_closing_price":102417000.0,"change":"RISE","change_price":1076000.0,"change_rate":0.0105060683,"signed_change_price":1076000.0,"signed_change_rate":0.0105060683,"trade_volume":0.00094678,"acc_trade_price":104890185475.22821,"acc_trade_price_24h":162997300132.123,"acc_trade_volume":1024.30599241,"acc_trade_volume_24h":1587.73606087,"highest_52_week_price":179869000.0,"highest_52_week_date":"2025-10-09","lowest_52_week_price":89000000.0,"lowest_52_week_date":"2026-02-06","timestamp":1773240058973}]'  # noqa: E501
REST_ORDERBOOK = b'[{"market":"KRW-BTC","timestamp":1773240059027,"total_ask_size":4.17884094,"total_bid_size":2.29686376,"orderbook_units":[{"bid_price":103460000,"bid_size":0.004,"ask_price":103493000,"ask_size":0.04910155},{"bid_price":103438000,"bid_size":0.00483381,"ask_price":103507000,"ask_size":0.06146}],"level":0}]'  # noqa: E501
REST_MARKETS_DETAILS = """[{"market":"KRW-BTC","korean_name":"비트코인","english_name":"Bitcoin","market_event":{"warning":false,"caution":{"PRICE_FLUCTUATIONS":false,"TRADING_VOLUME_SOARING":false,"DEPOSIT_AMOUNT_SOARING":false,"GLOBAL_PRICE_DIFFERENCES":false,"CONCENTRATION_OF_SMALL_ACCOUNTS":false}}},
 {"market":"KRW-ETH","korean_name":"이더리움","english_name":"Ethereum","market_event":{"warning":true,"caution":{"PRICE_FLUCTUATIONS":false,"TRADING_VOLUME_SOARING":false,"DEPOSIT_AMOUNT_SOARING":false,"GLOBAL_PRICE_DIFFERENCES":false,"CONCENTRATION_OF_SMALL_ACCOUNTS":false}}}]""".encode()  # noqa: E501
REST_MARKETS_PLAIN = (
    '[{"market":"KRW-BTC","korean_name":"비트코인","english_name":"Bitcoin"}]'.encode()
)
REST_ERRORS = [
    (b'{"error":{"name":404,"message":"Code not found"}}', (404, "Code not found")),
    (b'{"error":{"name":400,"message":"specified unit is not valid."}}', (400, "specified unit is not valid.")),  # noqa: E501
    (b'{"error":{"name":400,"message":"Missing request parameter error. Check the required parameters!"}}', (400, "Missing request parameter error. Check the required parameters!")),  # noqa: E501
    (b'{"error":{"name":400,"message":"Type mismatch error. Check the parameters type!"}}', (400, "Type mismatch error. Check the parameters type!")),  # noqa: E501
    (b'{"error":{"name":400,"message":"Invalid parameter. Check the given value!"}}', (400, "Invalid parameter. Check the given value!")),  # noqa: E501
    (b'{"error":{"name":"not_found","message":"no Route matched with those values"}}', ("not_found", "no Route matched with those values")),  # noqa: E501
]  # fmt: skip

ALL_FIVE_CAUTIONS = {
    "PRICE_FLUCTUATIONS": False,
    "TRADING_VOLUME_SOARING": False,
    "DEPOSIT_AMOUNT_SOARING": False,
    "GLOBAL_PRICE_DIFFERENCES": False,
    "CONCENTRATION_OF_SMALL_ACCOUNTS": False,
}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- WebSocket ----------------------------------------------------------------------------------


def test_ticker_default_snapshot_2025_04_20() -> None:
    assert decode_frame(TICKER_2025_04_20) == [
        Ticker(
            code="KRW-BTC",
            opening_price=122720000.0,
            high_price=123135000.0,
            low_price=122677000.0,
            trade_price=122902000.0,
            prev_closing_price=122720000.0,
            change="RISE",
            change_price=182000.0,
            signed_change_price=182000.0,
            change_rate=0.0014830508,
            signed_change_rate=0.0014830508,
            trade_volume=0.00020372,
            acc_trade_volume=160.18173252,
            acc_trade_volume_24h=549.8161415,
            acc_trade_price=19699800600.25381,
            acc_trade_price_24h=67648718116.20854,
            trade_date="20250420",
            trade_time="063055",
            trade_timestamp=1745130655618,
            timestamp=1745130655652,
            highest_52_week_price=163325000.0,
            highest_52_week_date="2025-01-20",
            lowest_52_week_price=72100000.0,
            lowest_52_week_date="2024-08-05",
            ask_bid="ASK",
            acc_ask_volume=80.07639388,
            acc_bid_volume=80.10533864,
            market_state="ACTIVE",
            is_trading_suspended=False,
            delisting_date=None,
            market_warning="NONE",
            stream_type="SNAPSHOT",
        )
    ]


def test_ticker_default_realtime_zero_spellings() -> None:
    """``0E-8`` and ``0`` are both zero floats."""
    [ticker] = decode_frame(TICKER_2025_09_26)
    assert isinstance(ticker, Ticker)
    assert (ticker.change, ticker.change_price, ticker.signed_change_price) == ("EVEN", 0.0, 0.0)
    assert (ticker.change_rate, ticker.signed_change_rate) == (0.0, 0.0)
    assert all(
        type(v) is float
        for v in (ticker.change_price, ticker.change_rate, ticker.signed_change_rate)
    )
    assert ticker.acc_trade_price == 95088751392.90992
    assert ticker.acc_trade_price_24h == 331188513477.17233
    assert (ticker.trade_timestamp, ticker.timestamp) == (1758875206936, 1758875206974)
    assert ticker.stream_type == "REALTIME"


# The doc's SIMPLE_LIST ticker is a "field subset as published": it lacks tms, atp24h and atv24h,
# which Upbit always sends and the model requires. As published it is malformed; completed with
# those three keys it decodes to exactly the published values.
_TICKER_SUBSET_COMPLETION = b',"tms":1751854855960,"atp24h":1.0E11,"atv24h":700.5}]'


def test_ticker_simple_list_doc_subset_lacks_required_fields() -> None:
    with pytest.raises(MalformedFrameError) as info:
        decode_frame(TICKER_SIMPLE_LIST_DOC)
    reason = info.value.reason
    assert reason.startswith("item 0: ticker (SIMPLE): Object missing required field `")
    assert reason.rsplit("`", 2)[1] in {"tms", "atp24h", "atv24h"}
    assert info.value.raw == TICKER_SIMPLE_LIST_DOC


def test_ticker_simple_list_doc_values() -> None:
    completed = TICKER_SIMPLE_LIST_DOC[:-2] + _TICKER_SUBSET_COMPLETION
    assert decode_frame(completed) == [
        Ticker(
            code="KRW-BTC",
            opening_price=148500000.0,
            high_price=149064000.0,
            low_price=148050000.0,
            trade_price=148956000.0,
            prev_closing_price=148500000.0,
            change="RISE",
            change_price=456000.0,
            signed_change_price=456000.0,
            change_rate=0.0030707071,
            signed_change_rate=0.0030707071,
            trade_volume=0.0602652,
            acc_trade_volume=108.51228784,
            acc_trade_volume_24h=700.5,
            acc_trade_price=16115868486.03173,
            acc_trade_price_24h=1.0e11,
            trade_date="20250707",
            trade_time="022055",
            trade_timestamp=1751854855934,
            timestamp=1751854855960,
            highest_52_week_price=163325000.0,
            highest_52_week_date="2025-01-20",
            ask_bid="BID",
            acc_ask_volume=36.9943567,
            acc_bid_volume=71.51793114,
            stream_type="SNAPSHOT",
        )
    ]


def test_trade_default_2026_09_02() -> None:
    assert decode_frame(TRADE_2026_09_02) == [
        Trade(
            code="KRW-BTC",
            trade_timestamp=1788335180377,
            trade_price=106691000.0,
            trade_volume=0.00009372,
            ask_bid="ASK",
            sequential_id=17883351803770004,
            prev_closing_price=107005000.0,
            change_price=314000.0,
            timestamp=1788335180423,
            trade_date="2026-09-02",
            trade_time="07:46:20",
            change="FALL",
            best_ask_price=106705000.0,
            best_ask_size=0.00906333,
            best_bid_price=106691000.0,
            best_bid_size=0.00702247,
            stream_type="SNAPSHOT",
        )
    ]


def test_trade_sequential_id_is_exact_int() -> None:
    """17 digits exceed 2**53: as floats, neighbouring ids (distinct trades) would merge."""
    [trade] = decode_frame(TRADE_2026_09_02)
    assert isinstance(trade, Trade)
    assert type(trade.sequential_id) is int
    assert trade.sequential_id == 17883351803770004
    assert float(17883351803770004) == float(17883351803770005)  # why it must be an int


def test_trade_json_list_doc() -> None:
    btc, eth = decode_frame(TRADE_JSON_LIST_DOC)
    assert isinstance(btc, Trade)
    assert isinstance(eth, Trade)
    assert (btc.code, btc.sequential_id, btc.trade_price, btc.ask_bid) == (
        "KRW-BTC",
        17303368620470000,
        100473000.0,
        "BID",
    )
    assert eth == Trade(
        code="KRW-ETH",
        trade_timestamp=1730336862080,
        trade_price=3700000.0,
        trade_volume=0.02207517,
        ask_bid="BID",
        sequential_id=17303368620800006,
        prev_closing_price=3695000.0,
        change_price=5000.0,
        timestamp=1730336862120,
        trade_date="2024-10-31",
        trade_time="01:07:42",
        change="RISE",
        best_ask_price=3700000.0,
        best_ask_size=0.39101775,
        best_bid_price=3699000.0,
        best_bid_size=0.13499454,
        stream_type="SNAPSHOT",
    )


def test_trade_simple_2020_without_best_fields() -> None:
    raw = json.dumps(ast.literal_eval(TRADE_SIMPLE_2020_PYDICT)).encode()
    assert decode_frame(raw) == [
        Trade(
            code="KRW-BTC",
            trade_timestamp=1584257228000,
            trade_price=6759000.0,
            trade_volume=0.03243003,
            ask_bid="BID",
            sequential_id=1584257228000000,
            prev_closing_price=6823000.0,
            change_price=64000.0,
            timestamp=1584257228806,
            trade_date="2020-03-15",
            trade_time="07:27:08",
            change="FALL",
            stream_type="SNAPSHOT",
        )
    ]


def test_orderbook_default_snapshot_and_realtime() -> None:
    snapshot, realtime = decode_frame(ORDERBOOK_SNAPSHOT) + decode_frame(ORDERBOOK_REALTIME)
    assert snapshot == Orderbook(
        code="KRW-BTC",
        timestamp=1790134742106,
        total_ask_size=2.51469375,
        total_bid_size=1.63815297,
        units=(
            OrderbookUnit(116539000.0, 116538000.0, 0.02054761, 0.08120946),
            OrderbookUnit(116542000.0, 116537000.0, 0.0007772, 0.01129382),
        ),
        level=0.0,
        stream_type="SNAPSHOT",
    )
    assert isinstance(realtime, Orderbook)
    assert (realtime.timestamp, realtime.stream_type) == (1790134743006, "REALTIME")
    assert realtime.units[0].bid_size == 0.06612366


def test_orderbook_simple_exponent_sizes() -> None:
    assert decode_frame(ORDERBOOK_SIMPLE) == [
        Orderbook(
            code="KRW-BTC",
            timestamp=1790134773006,
            total_ask_size=0.48514983,
            total_bid_size=2.2403413,
            units=(
                OrderbookUnit(116606000.0, 116534000.0, 0.06288509, 0.00079276),
                OrderbookUnit(116609000.0, 116521000.0, 0.0005, 0.01624318),
            ),
            level=0.0,
            stream_type="SNAPSHOT",
        )
    ]


def test_orderbook_simple_list_with_level_and_no_stream_type() -> None:
    [book] = decode_frame(ORDERBOOK_SIMPLE_LIST)
    assert book == Orderbook(
        code="KRW-BTC",
        timestamp=1751855921432,
        total_ask_size=17.12835169,
        total_bid_size=4.81969018,
        units=(
            OrderbookUnit(148880000.0, 148830000.0, 0.37765316, 0.34809059),
            OrderbookUnit(148890000.0, 148820000.0, 0.64120607, 0.02744065),
            OrderbookUnit(148900000.0, 148810000.0, 0.70085443, 0.04667566),
        ),
        level=10000.0,
        stream_type=None,
    )


def test_candle_default_1s() -> None:
    assert decode_frame(CANDLE_DEFAULT) == [
        Candle(
            code="KRW-BTC",
            interval="1s",
            start_utc=ts("2025-01-02T04:28:05"),
            opening_price=142009000.0,
            high_price=142009000.0,
            low_price=142009000.0,
            trade_price=142009000.0,
            candle_acc_trade_price=860743.53071,
            candle_acc_trade_volume=0.00606119,
            timestamp=1735792085824,
            stream_type="REALTIME",
        )
    ]


def test_candle_simple_list_1s() -> None:
    [candle] = decode_frame(CANDLE_SIMPLE_LIST)
    assert candle == Candle(
        code="KRW-BTC",
        interval="1s",
        start_utc=ts("2025-07-07T02:29:24"),
        opening_price=149000000.0,
        high_price=149000000.0,
        low_price=149000000.0,
        trade_price=149000000.0,
        candle_acc_trade_price=49999.93,
        candle_acc_trade_volume=0.00033557,
        timestamp=1751855364161,
        stream_type="SNAPSHOT",
    )
    assert candle.start_utc.tzinfo is UTC


def test_status_frame() -> None:
    assert decode_frame(STATUS_UP) == [StatusFrame(status="UP")]
    assert decode_frame(b'{ "status" : "UP" }\n') == [StatusFrame(status="UP")]


@pytest.mark.parametrize(("text", "expected"), WS_ERRORS)
def test_error_frames_either_key_order(text: str, expected: ErrorFrame) -> None:
    assert decode_frame(text.encode()) == [expected]


def test_list_subscriptions_answer_is_not_a_message() -> None:
    """No model exists for it: the caller that sent LIST_SUBSCRIPTIONS handles the raw frame."""
    with pytest.raises(MalformedFrameError, match="no `type` or `ty` key"):
        decode_frame(LIST_SUBSCRIPTIONS)


def test_channel_of() -> None:
    messages = [
        *decode_frame(TRADE_2026_09_02),
        *decode_frame(TICKER_2025_04_20),
        *decode_frame(ORDERBOOK_SIMPLE),
        *decode_frame(CANDLE_DEFAULT),
    ]
    assert [channel_of(m) for m in messages] == ["trade", "ticker", "orderbook", "candle"]
    assert channel_of(decode_trades_rest(REST_TRADES)[0]) == "trade"
    with pytest.raises(TypeError, match="StatusFrame is not market data"):
        channel_of(StatusFrame(status="UP"))


# --- REST ----------------------------------------------------------------------------------------


def test_rest_candle_minutes() -> None:
    assert decode_candles_rest(REST_MINUTES, "1m") == [
        Candle(
            code="KRW-BTC",
            interval="1m",
            start_utc=ts("2026-03-11T14:40:00"),
            opening_price=103600000.0,
            high_price=103600000.0,
            low_price=103425000.0,
            trade_price=103460000.0,
            candle_acc_trade_price=164899503.14206,
            candle_acc_trade_volume=1.5933512,
            timestamp=1773240059132,
        )
    ]


def test_rest_candle_seconds() -> None:
    [candle] = decode_candles_rest(REST_SECONDS, "1s")
    assert (candle.interval, candle.start_utc, candle.trade_price) == (
        "1s",
        ts("2026-03-11T14:40:58"),
        103458000.0,
    )
    assert candle.candle_acc_trade_price == 2654722.02446


def test_rest_candle_days() -> None:
    assert decode_candles_rest(REST_DAYS, "1d") == [
        Candle(
            code="KRW-BTC",
            interval="1d",
            start_utc=ts("2026-03-11T00:00:00"),
            opening_price=102417000.0,
            high_price=103988000.0,
            low_price=101150000.0,
            trade_price=103460000.0,
            candle_acc_trade_price=104890599315.22821,
            candle_acc_trade_volume=1024.30999241,
            timestamp=1773240059132,
            prev_closing_price=102417000.0,
            change_price=1043000.0,
            change_rate=0.0101838562,
        )
    ]


def test_rest_candle_weeks_and_months() -> None:
    [week] = decode_candles_rest(REST_WEEKS, "1w")
    [month] = decode_candles_rest(REST_MONTHS, "1mo")
    assert (week.interval, week.start_utc, week.first_day_of_period) == (
        "1w",
        ts("2026-03-09T00:00:00"),
        "2026-03-09",
    )
    assert week.candle_acc_trade_price == 509244554633.83154
    assert (month.interval, month.first_day_of_period, month.trade_price) == (
        "1mo",
        "2026-03-01",
        103458000.0,
    )
    assert month.candle_acc_trade_price == 2511125524827.9736
    assert week.prev_closing_price is None
    assert month.stream_type is None


def test_rest_trades() -> None:
    assert decode_trades_rest(REST_TRADES) == [
        Trade(
            code="KRW-BTC",
            trade_timestamp=1773240059095,
            trade_price=103460000.0,
            trade_volume=0.004,
            ask_bid="ASK",
            sequential_id=17732400590950000,
            prev_closing_price=102417000.0,
            change_price=1043000.0,
            timestamp=1773240059095,
            trade_date="2026-03-11",
            trade_time="14:40:59",
        )
    ]


def test_rest_ticker() -> None:
    assert decode_tickers_rest(REST_TICKER) == [
        Ticker(
            code="KRW-BTC",
            opening_price=102417000.0,
            high_price=103988000.0,
            low_price=101150000.0,
            trade_price=103493000.0,
            prev_closing_price=102417000.0,
            change="RISE",
            change_price=1076000.0,
            signed_change_price=1076000.0,
            change_rate=0.0105060683,
            signed_change_rate=0.0105060683,
            trade_volume=0.00094678,
            acc_trade_volume=1024.30599241,
            acc_trade_volume_24h=1587.73606087,
            acc_trade_price=104890185475.22821,
            acc_trade_price_24h=162997300132.123,
            trade_date="20260311",
            trade_time="144058",
            trade_timestamp=1773240058930,
            timestamp=1773240058973,
            highest_52_week_price=179869000.0,
            highest_52_week_date="2025-10-09",
            lowest_52_week_price=89000000.0,
            lowest_52_week_date="2026-02-06",
        )
    ]


def test_rest_orderbook_unit_key_order_and_plain_int_prices() -> None:
    assert decode_orderbooks_rest(REST_ORDERBOOK) == [
        Orderbook(
            code="KRW-BTC",
            timestamp=1773240059027,
            total_ask_size=4.17884094,
            total_bid_size=2.29686376,
            units=(
                OrderbookUnit(103493000.0, 103460000.0, 0.04910155, 0.004),
                OrderbookUnit(103507000.0, 103438000.0, 0.06146, 0.00483381),
            ),
            level=0.0,
        )
    ]


def test_rest_markets_with_and_without_details() -> None:
    assert decode_markets(REST_MARKETS_DETAILS) == [
        Market("KRW-BTC", "비트코인", "Bitcoin", MarketEvent(False, ALL_FIVE_CAUTIONS)),
        Market("KRW-ETH", "이더리움", "Ethereum", MarketEvent(True, ALL_FIVE_CAUTIONS)),
    ]
    assert decode_markets(REST_MARKETS_PLAIN) == [Market("KRW-BTC", "비트코인", "Bitcoin")]


def test_rest_markets_old_schema_with_market_warning() -> None:
    body = b'[{"market":"KRW-BTC","korean_name":"x","english_name":"Bitcoin","market_warning":"CAUTION"}]'  # noqa: E501
    [market] = decode_markets(body)
    assert (market.market_warning, market.market_event, market.quote) == ("CAUTION", None, "KRW")


@pytest.mark.parametrize(("body", "expected"), REST_ERRORS)
def test_rest_error_bodies(body: bytes, expected: tuple[int | str, str]) -> None:
    assert decode_rest_error(body) == expected


@pytest.mark.parametrize(
    "body", [REST_TRADES, REST_MARKETS_PLAIN, b"", b"<html>502 Bad Gateway</html>", b'{"error":1}']
)
def test_rest_error_none_for_anything_else(body: bytes) -> None:
    assert decode_rest_error(body) is None


@pytest.mark.parametrize(
    "decode",
    [
        decode_trades_rest,
        decode_tickers_rest,
        decode_orderbooks_rest,
        decode_markets,
        lambda body: decode_candles_rest(body, "1m"),
    ],
)
def test_rest_decoders_name_an_error_body(decode) -> None:  # type: ignore[no-untyped-def]
    body = REST_ERRORS[0][0]
    with pytest.raises(MalformedFrameError, match=r"body is an Upbit error 404: Code not found"):
        decode(body)
