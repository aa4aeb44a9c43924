"""The billing service's settings: its own fields (prices and limits in minor units of
billing_currency) and the shared parts it reads."""

from __future__ import annotations

from pydantic import Field

from callgauge_platform.settings import BillingEndpoint, StoreServiceSettings


class BillingSettings(StoreServiceSettings, BillingEndpoint):
    """Every CALLGAUGE_* setting the billing service reads (the docs' settings reference)."""

    billing_mode: str = Field(
        "unmetered", description="unmetered (self-hosted default: usage and history are recorded and shown, "
        "priced at zero; nothing is ever refused or hung up for money) | prepaid (an operator selling "
        "Callgauge: prices, wallets, 402 when a run does not fit, hang-up at zero, auto top-up)")
    billing_currency: str = Field("EUR", description="ISO 4217 currency of new wallets")
    billing_welcome_credit_minor: int = Field(
        10_000, ge=0, description="credited when a wallet opens, so a new account can run its first tests")
    billing_price_call_second_minor: int = Field(1, ge=0, description="per answered call-second")
    billing_price_registration_minor: int = Field(1, ge=0, description="per registration attempt")
    billing_price_probe_run_minor: int = Field(5, ge=0, description="per probe run")
    billing_min_balance_minor: int = Field(1, ge=0, description="available balance a run needs to start")
    billing_max_top_up_minor: int = Field(10_000_000, ge=1, description="largest single top-up")
    billing_reservation: str = Field(
        "max_cost", description="max_cost: a run holds its maximum cost before it starts; minimum: only "
        "billing_min_balance_minor must be available (calls are cut when the balance runs out)")
    billing_payment_provider: str = Field(
        "none", description="pays top-ups and auto top-ups: none (nothing is paid, so nothing credited: the "
        "operator credits wallets with `callgauge credit`) | local (every payment succeeds: one-user machines "
        "and tests only, users mint money with it) | declining")
