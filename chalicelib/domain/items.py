"""Service items are named everywhere by the service guide's code (办事指南事项编码, e.g.
`QP-RS-201`): applications, bookings, ticket routing and the knowledge base."""

# Item ids that bookings and ticket routing used before both referred to the guide's codes.
# Stored bookings, services, rules and old clients may still send them: they read as the code.
LEGACY_ITEM_CODES: dict[str, str] = {
    "item-id-card": "QP-GA-601",
    "item-social-insurance": "QP-RS-203",
    "item-medical-reimburse": "QP-YB-302",
    "item-elderly-allowance": "QP-MZ-701",
    "item-disability-subsidy": "QP-MZ-702",
    "item-social-assistance": "QP-MZ-703",
    "item-company-setup": "QP-SC-101",
    "item-qysl": "QP-SC-101",
    "item-spjy": "QP-SC-104",
    "item-tax": "QP-SW-801",
    "item-property-transfer": "QP-GH-901",
    "item-talent-residence": "QP-RC-502",
    "item-sbk": "QP-RS-204",
    "item-lhjy": "QP-RS-205",
    "item-ydba": "QP-YB-301",
}


def item_code(value: str) -> str:
    """The guide's code of an item named by its code or by a legacy id."""
    return LEGACY_ITEM_CODES.get(value, value)
