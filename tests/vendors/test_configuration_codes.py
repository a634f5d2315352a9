"""Finding 9: codes that mean our account at the vendor is wrong (IP not allowed, wrong
credentials, account disabled) are configuration errors, never a refusal of the recipients; each
vendor's simulator answers them as its document does, and the error says what to fix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from smsrelay.vendors import Outcome, VendorAdapter, VendorRequestError, adapter_class
from smsrelay_local.simulators import simulator_class

# vendor -> the documents' codes for IP not allowed, wrong credentials, account disabled/frozen
CONFIGURATION_CODES = {
    "sms57": {"2", "3", "4", "6", "7", "10"},  # IP 鉴权, 账号密码, 版本号, 接入点, 已停用; RESULT 10 extno
    "kxt3": {"200", "220", "240", "250", "260"},  # 认证错, 无效来源, 认证失败, 账户/机构已停用
    "smsadmin": {"1", "4", "8"},  # 用户名或密码错误, 此用户不允许发送, 用户已冻结
    "intl": {"1002", "1003", "1004", "1005"},  # AppKeyError, PasswordError, BindIpError, AccountStop
    "santo": {"0104", "0106", "0108"},  # 账号信息错误, 账号密码错误, IP 未在白名单中
}


@pytest.mark.parametrize("vendor", sorted(CONFIGURATION_CODES))
def test_configuration_codes_are_classified_with_a_meaning(vendor: str) -> None:
    codes = adapter_class(vendor).codes
    classified = {code for code in codes if codes.outcome(code) is Outcome.CONFIGURATION}
    assert classified == CONFIGURATION_CODES[vendor]
    for code in classified:
        meaning = codes.lookup(code).description
        assert meaning and not meaning.startswith("unknown"), (vendor, code)


# vendor -> (how the simulator is set up wrong, the call, the code it answers)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "sms57": ({"disabled": True}, {}, "7"),
    "kxt3": ({}, {"password": "wrong"}, "200"),
    "smsadmin": ({"frozen": True}, {}, "8"),
    "intl": ({}, {"app_key": "not-ours"}, "1002"),
    "santo": ({"allowed_ips": ["10.0.0.1"]}, {}, "0108"),
}
NUMBERS = {
    "sms57": "+8613800000001",
    "kxt3": "+8613800000001",
    "smsadmin": "+8613800000001",
    "intl": "+447911123456",
    "santo": "+6591234567",
}


@pytest.fixture(scope="module")
def simulators() -> Iterator[Callable[[str], Any]]:
    started: dict[str, Any] = {}

    def get(vendor: str) -> Any:
        if vendor not in started:
            started[vendor] = simulator_class(vendor)(report_delay_s=0.01)
            started[vendor].start()
        return started[vendor]

    yield get
    for sim in started.values():
        sim.stop()


@pytest.mark.parametrize("vendor", sorted(CASES))
def test_a_misconfigured_account_raises_a_configuration_error_and_sends_nothing(
    simulators: Callable[[str], Any], vendor: str
) -> None:
    sim_state, settings, code = CASES[vendor]
    sim = simulators(vendor)
    saved = {name: getattr(sim, name) for name in sim_state}
    for name, value in sim_state.items():
        setattr(sim, name, value)
    try:
        adapter: VendorAdapter = adapter_class(vendor)({**sim.settings(), **settings})
        with pytest.raises(VendorRequestError) as err:
            adapter.send([NUMBERS[vendor]], "【Acme】hi")
    finally:
        for name, value in saved.items():
            setattr(sim, name, value)
    assert err.value.code == code and err.value.outcome is Outcome.CONFIGURATION
    assert err.value.description and not err.value.may_have_reached
    assert err.value.partial == [] and sim.accepted == []
