"""The answers of the aspyx side's parcel services: ``server.py`` (dispatch-json, dispatch-msgpack) and
``pb_server.py`` (dispatch-protobuf) give the same ones, which the warpcall side's tests expect."""

from contract import Address, Customer, Item, Parcel

SIDE = "aspyx"


def weighed(parcel: Parcel) -> Parcel:
    return Parcel(
        id=parcel.id,
        weight=parcel.weight * 2,
        fragile=not parcel.fragile,
        label=parcel.label.upper(),
        tags=[*parcel.tags, "weighed"],
        items=[*parcel.items, Item(sku=f"stamp-{len(parcel.items)}", quantity=parcel.items[0].quantity + 1)],
        note=f"weighed by {SIDE}",
    )


class ParcelAnswers:
    """``hello``, ``weigh``, ``upgrade`` and ``fail`` of a parcel service, mixed into each contract's
    implementation (the contracts stay declared once per channel family)."""

    def hello(self, name: str) -> str:
        return f"hello {name} from {SIDE}"

    def weigh(self, parcel: Parcel) -> Parcel:
        return weighed(parcel)

    def upgrade(self, customer: Customer) -> Customer:
        return Customer(
            name=customer.name + " (vip)",
            vip=True,
            score=customer.score + 1.5,
            tags=[*customer.tags, f"upgraded-by-{SIDE}"],
            address=Address(street=customer.address.street, city=customer.address.city.upper()),
        )

    def fail(self, reason: str) -> str:
        raise ValueError(f"refused by {SIDE}: {reason}")
