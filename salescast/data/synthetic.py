"""Seeded synthetic retail sales: daily units per store and product with the effects real sales have.

`generate_sales` draws everything from one `numpy.random.default_rng(config.seed)`, so a config always
gives the same frame. The work is vectorised over (stores, products, days) arrays; the only Python
loops run over the handful of categories.

Demand is multiplicative: the mean units of a store, product and day are

    level[product] * store_size[store] * affinity[store, product] * store_day_shock[store, day]
    * trend * weekly[category, weekday] * yearly[category, day] * holiday[day]
    * price_effect * promotion_lift * post_promotion_dip * launch_ramp

and units are negative-binomial draws around that mean (a Poisson with a gamma-distributed mean), so
they are non-negative integers. Rough sizes with the default config, for tests and models to rely on:

- Catalog: 7 categories (Grocery, Home, Electronics, Toys, Apparel, Beauty, Garden), each with 4-6
  subcategories. Median units/day of a regular product in an average store range from 0.8
  (Electronics) to 5 (Grocery); subcategories scale that by a log-normal factor (sd 0.3) and products
  by another (sd 1.0), so a few fast movers sell tens a day while most sell a few.
- Intermittent demand: `intermittent_share` (30%) of the products are slow movers with a mean of
  0.05-0.5 units/day, so most of their days are zero. With the slow tail of the regular products,
  about half of the series have more than 30% zero days.
- Stores: size multiplier log-normal (sd 0.35, median 1); store-product affinity log-normal (sd 0.25);
  a store-day shock (weather, local events) log-normal (sd 0.08) shared by the store's products.
- Trend: log-linear per product, growth drawn with sd `trend_sd` (15%) per year.
- Weekly: a Monday-to-Sunday profile per category with a Saturday/Sunday peak: weekend days sell
  about 1.3x (Beauty) to 1.95x (Garden) what Tuesday/Wednesday sell, 1.6x over the whole assortment.
- Yearly: a mid-July cosine (Garden +-0.6 in log, i.e. 1.8x summer, 0.55x winter; others 0-0.1), a
  pre-Christmas ramp peaking on 24 December (log 1.1, i.e. 3x, for Toys; 2x Electronics; 1.15-1.6x
  the others but Garden) that falls off within days after Christmas, and small per-product Fourier
  terms (sd 0.06). December sells about 2x what March does for Toys.
- Holidays of `config.country` (the `holidays` package, observed days included): +30% on the day,
  +20% the day before and +10% two days before (the largest applies). Stores do not close.
- Promotions: product-wide spells of 3-14 days covering about `promo_share` (8%) of product-days, with
  10-40% off the regular price; demand rises by the price elasticity plus a 1.25x display lift (about
  1.5-2.7x in all), and dips by 15% in the week after a spell (customers stocked up).
- Prices: regular prices around a category median (Grocery 4, Electronics 120, ...) with psychological
  endings (.99, or .x9 below 10); about `price_changes_per_year` (0.5) permanent steps per product and
  year, of 3-12%, 70% of them increases, never during a promotion or on the day after one. Demand
  follows (price / first regular price) ** elasticity with the elasticity drawn around -1.5 (sd 0.3).
- Launches: `launch_share` (15%) of the products launch after `start`, on a day between 10% and 80% of
  the history; they have no rows before launch and ramp up (1 - exp(-days on sale / 21)).
- Noise: negative binomial with `overdispersion` 0.15 (variance = mean + 0.15 * mean**2).
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import holidays
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from salescast.errors import ConfigurationError

Floats = npt.NDArray[np.float64]
Floats32 = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Objects = npt.NDArray[np.object_]

SALES_COLUMNS: Final = (
    "date",
    "store",
    "store_name",
    "product",
    "product_name",
    "category",
    "subcategory",
    "units",
    "unit_price",
    "revenue",
    "on_promotion",
)


@dataclass(frozen=True)
class SyntheticConfig:
    stores: int = 5
    products: int = 50  # every store sells every product
    days: int = 730
    start: datetime.date = datetime.date(2023, 1, 1)
    seed: int = 0
    country: str = "US"  # holiday calendar of the `holidays` package
    promo_share: float = 0.08  # share of product-days on promotion, roughly (spells may overlap)
    intermittent_share: float = 0.3  # share of products that are slow movers with mostly-zero days
    launch_share: float = 0.15  # share of products launched after `start`
    price_changes_per_year: float = 0.5  # permanent regular-price steps per product and year
    price_elasticity: float = -1.5  # mean of the per-product elasticities
    trend_sd: float = 0.15  # sd of the per-product log growth per year
    holiday_uplift: float = 0.3  # on the holiday; the two days before get 2/3 and 1/3 of it
    promo_lift: float = 1.25  # demand uplift of a promotion on top of its price effect
    post_promo_dip: float = 0.15  # demand lost in the week after a promotion
    overdispersion: float = 0.15  # 1 / shape of the gamma mixing; 0 gives Poisson units

    def __post_init__(self) -> None:
        for name in ("stores", "products", "days"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"synthetic data: {name} must be at least 1")
        for name in ("promo_share", "intermittent_share", "launch_share", "post_promo_dip"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigurationError(f"synthetic data: {name} must lie between 0 and 1")
        for name in ("price_changes_per_year", "trend_sd", "holiday_uplift", "overdispersion"):
            if getattr(self, name) < 0.0:
                raise ConfigurationError(f"synthetic data: {name} must not be negative")
        if self.promo_lift <= 0.0:
            raise ConfigurationError("synthetic data: promo_lift must be positive")

    @property
    def end(self) -> datetime.date:
        return self.start + datetime.timedelta(days=self.days - 1)


@dataclass(frozen=True)
class _Category:
    name: str
    share: float  # of the assortment
    level: float  # median units/day of a regular product in an average store
    price: float  # median regular price
    weekly: tuple[float, float, float, float, float, float, float]  # Monday..Sunday, relative
    summer: float  # log amplitude of the mid-July peak
    christmas: float  # log uplift at the 24 December peak
    subcategories: tuple[tuple[str, tuple[str, ...]], ...]  # (subcategory, item nouns for names)


CATEGORIES: Final = (
    _Category(
        "Grocery",
        0.30,
        5.0,
        4.0,
        (0.90, 0.82, 0.82, 0.92, 1.10, 1.38, 1.20),
        0.05,
        0.15,
        (
            ("Dairy", ("Yogurt", "Milk", "Cheddar", "Butter")),
            ("Bakery", ("Sourdough", "Bagels", "Croissants", "Muffins")),
            ("Snacks", ("Crisps", "Pretzels", "Trail Mix", "Cookies")),
            ("Beverages", ("Cola", "Orange Juice", "Sparkling Water", "Iced Tea")),
            ("Produce", ("Apples", "Bananas", "Salad Mix", "Tomatoes")),
            ("Pantry", ("Pasta", "Rice", "Olive Oil", "Cereal")),
        ),
    ),
    _Category(
        "Home",
        0.15,
        2.0,
        15.0,
        (0.88, 0.85, 0.85, 0.90, 1.02, 1.45, 1.30),
        0.0,
        0.3,
        (
            ("Kitchen", ("Frying Pan", "Knife Set", "Mixing Bowls", "Kettle")),
            ("Cleaning", ("Detergent", "Sponges", "Mop", "Glass Cleaner")),
            ("Bedding", ("Pillow", "Duvet", "Sheet Set", "Blanket")),
            ("Decor", ("Candle", "Picture Frame", "Vase", "Wall Clock")),
        ),
    ),
    _Category(
        "Electronics",
        0.10,
        0.8,
        120.0,
        (0.85, 0.82, 0.84, 0.90, 1.05, 1.45, 1.25),
        0.0,
        0.7,
        (
            ("Phones", ("Smartphone", "Phone Case", "Charger")),
            ("Audio", ("Headphones", "Speaker", "Earbuds", "Soundbar")),
            ("Computers", ("Laptop", "Tablet", "Monitor", "Keyboard")),
            ("Accessories", ("USB Cable", "Power Bank", "Memory Card", "Mouse")),
        ),
    ),
    _Category(
        "Toys",
        0.10,
        1.2,
        25.0,
        (0.80, 0.78, 0.80, 0.88, 1.05, 1.55, 1.40),
        0.1,
        1.1,
        (
            ("Games", ("Board Game", "Puzzle", "Card Game")),
            ("Dolls", ("Doll", "Doll House", "Action Figure")),
            ("Building Sets", ("Brick Set", "Construction Kit", "Marble Run")),
            ("Outdoor Toys", ("Kite", "Water Blaster", "Scooter")),
        ),
    ),
    _Category(
        "Apparel",
        0.15,
        1.5,
        35.0,
        (0.85, 0.82, 0.84, 0.92, 1.10, 1.45, 1.30),
        0.1,
        0.35,
        (
            ("Menswear", ("Shirt", "Chinos", "Jacket", "Sweater")),
            ("Womenswear", ("Dress", "Blouse", "Jeans", "Cardigan")),
            ("Kidswear", ("T-Shirt", "Shorts", "Hoodie", "Pyjamas")),
            ("Footwear", ("Sneakers", "Boots", "Sandals", "Slippers")),
        ),
    ),
    _Category(
        "Beauty",
        0.10,
        1.8,
        12.0,
        (0.92, 0.90, 0.92, 0.98, 1.08, 1.25, 1.10),
        0.05,
        0.45,
        (
            ("Skincare", ("Moisturiser", "Sunscreen", "Cleanser", "Serum")),
            ("Haircare", ("Shampoo", "Conditioner", "Hair Oil")),
            ("Makeup", ("Lipstick", "Mascara", "Foundation")),
            ("Fragrance", ("Eau de Parfum", "Body Mist", "Cologne")),
        ),
    ),
    _Category(
        "Garden",
        0.10,
        1.2,
        30.0,
        (0.80, 0.78, 0.80, 0.85, 1.00, 1.60, 1.55),
        0.6,
        0.0,
        (
            ("Plants", ("Rose Bush", "Herb Pot", "Tulip Bulbs", "Fern")),
            ("Garden Tools", ("Spade", "Pruner", "Hose", "Rake")),
            ("Outdoor Furniture", ("Bench", "Parasol", "Lounger")),
            ("Grilling", ("Charcoal", "Gas Grill", "Grill Tongs")),
        ),
    ),
)

_BRANDS: Final = (
    "Acorn", "Bellwether", "Brightfield", "Cascade", "Cobalt", "Driftwood", "Ember", "Fairhaven",
    "Granite", "Harbor", "Juniper", "Kestrel", "Lumen", "Meridian", "Northwind", "Orchard",
    "Pinecrest", "Quartz", "Redwood", "Silverline", "Tidewater", "Vantage", "Willow", "Zephyr",
)  # fmt: skip
_VARIANTS: Final = ("Classic", "Original", "Pro", "Lite", "Max", "Mini", "Plus", "Select", "Premium", "Eco")
_CITIES: Final = (
    "Springfield", "Riverside", "Fairview", "Greenville", "Franklin", "Madison", "Clinton", "Georgetown",
    "Salem", "Arlington", "Ashland", "Burlington", "Dover", "Hudson", "Kingston", "Lexington",
    "Milton", "Newport", "Oxford", "Clayton", "Jackson", "Marion", "Auburn", "Dayton",
)  # fmt: skip
_STORE_KINDS: Final = ("Central", "Mall", "Plaza", "Outlet", "Market", "Retail Park")

_LAUNCH_RAMP_DAYS: Final = 21.0
_PROMO_DAYS: Final = (3, 14)
_DISCOUNTS: Final = np.array([0.10, 0.15, 0.20, 0.25, 0.30, 0.40])
_DISCOUNT_WEIGHTS: Final = np.array([0.15, 0.20, 0.25, 0.20, 0.12, 0.08])
_DIP_DAYS: Final = 7
_WRITE_ROWS: Final = 1_000_000


def holiday_dates(country: str, start: datetime.date, end: datetime.date) -> pd.DatetimeIndex:
    """The public holidays (observed days included) of `country` from `start` to `end` inclusive."""
    try:
        calendar = holidays.country_holidays(country, years=range(start.year, end.year + 1))
    except NotImplementedError as exc:
        raise ConfigurationError(f"the holidays package has no calendar for country {country!r}") from exc
    days = sorted(day for day in calendar if start <= day <= end)
    return pd.DatetimeIndex(pd.to_datetime(days), dtype="datetime64[ns]")


def generate_sales(config: SyntheticConfig) -> pd.DataFrame:
    """One row per store, product and day from the product's launch on; columns `SALES_COLUMNS`."""
    rng = np.random.default_rng(config.seed)
    dates = pd.date_range(config.start, periods=config.days, freq="D")
    products = _draw_products(rng, config)
    stores = _draw_stores(rng, config)
    discount, dip = _draw_promotions(rng, config)
    regular = _draw_regular_prices(rng, config, products.price, discount > 0)
    unit_price = np.where(discount > 0, np.round(regular * (1.0 - discount), 2), regular)

    # Demand follows the price relative to the first regular price, so steps and discounts both count.
    price_effect = (unit_price / regular[:, :1]) ** products.elasticity[:, None]
    price_effect[discount > 0] *= config.promo_lift
    price_effect[dip] *= 1.0 - config.post_promo_dip

    days_on_sale = np.arange(config.days)[None, :] - products.launch[:, None]
    on_sale = days_on_sale >= 0
    ramp = np.where(
        products.launch[:, None] > 0,
        1.0 - np.exp(-(np.maximum(days_on_sale, 0) + 1) / _LAUNCH_RAMP_DAYS),
        1.0,
    )
    ramp[~on_sale] = 0.0

    t_years = np.arange(config.days) / 365.25
    trend = np.exp(products.growth[:, None] * t_years[None, :])
    weekly = _weekly_profiles()[products.category[:, None], dates.weekday.to_numpy()[None, :]]
    yearly = _yearly_effects(rng, dates, products.category)
    holiday = _holiday_effect(config)
    product_day = products.level[:, None] * trend * weekly * yearly * holiday[None, :] * price_effect * ramp

    mean = _store_product_day_mean(rng, config, stores.size, product_day.astype(np.float32))
    units_all = rng.poisson(mean)
    del mean

    return _long_frame(
        dates,
        stores,
        products,
        on_sale,
        units=units_all[:, on_sale].ravel().astype(np.float64),
        unit_price=unit_price[on_sale],
        on_promotion=(discount > 0)[on_sale],
    )


def write_sales(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` as .csv, .csv.gz or .parquet (from the extension).

    Slices of `_WRITE_ROWS` rows are converted and written one at a time, so the Arrow copy of a
    ten-million-row frame never exists whole; the file appears under its name only once complete."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    is_parquet = suffixes[-1:] in ([".parquet"], [".pq"])
    is_csv = suffixes[-1:] == [".csv"] or suffixes[-2:] == [".csv", ".gz"]
    if not (is_parquet or is_csv):
        raise ConfigurationError(f"{path}: write sales as .csv, .csv.gz or .parquet")
    slices = (frame.iloc[start : start + _WRITE_ROWS] for start in range(0, len(frame), _WRITE_ROWS))
    schema = pa.Schema.from_pandas(frame.head(_WRITE_ROWS), preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        if is_parquet:
            with pq.ParquetWriter(partial, schema, compression="zstd") as parquet:
                for part in slices:
                    parquet.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))
        else:
            csv_schema = _dates_as_days(schema)
            with partial.open("wb") as raw, contextlib.ExitStack() as stack:
                # Python's gzip rather than Arrow's stream: about 2.5x faster here, and mtime=0 makes
                # the same frame give the same bytes.
                sink: io.BufferedIOBase = (
                    stack.enter_context(gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0))
                    if suffixes[-1] == ".gz"
                    else raw
                )
                with pa_csv.CSVWriter(sink, csv_schema) as csv:
                    for part in slices:
                        table = pa.Table.from_pandas(part, schema=schema, preserve_index=False)
                        csv.write_table(table.cast(csv_schema))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Products:
    code: Objects
    name: Objects
    category: Ints  # index into CATEGORIES
    subcategory: Objects
    level: Floats  # mean units/day in an average store, before the other effects
    price: Floats  # first regular price, before psychological rounding
    elasticity: Floats
    growth: Floats  # log growth per year
    launch: Ints  # day index of the first day on sale (0: on sale from `start`)


@dataclass(frozen=True)
class _Stores:
    code: Objects
    name: Objects
    size: Floats


def _draw_products(rng: np.random.Generator, config: SyntheticConfig) -> _Products:
    count = config.products
    shares = np.array([category.share for category in CATEGORIES])
    # Largest remainders rather than a free draw, so every category shows up in small assortments.
    quotas = shares / shares.sum() * count
    per_category = np.floor(quotas).astype(np.int64)
    leftovers = np.argsort(-(quotas - per_category), kind="stable")[: count - per_category.sum()]
    per_category[leftovers] += 1
    category = rng.permutation(np.repeat(np.arange(len(CATEGORIES)), per_category))

    sub_names = [sub for category_ in CATEGORIES for sub, _ in category_.subcategories]
    sub_nouns = [nouns for category_ in CATEGORIES for _, nouns in category_.subcategories]
    sub_count = np.array([len(c.subcategories) for c in CATEGORIES])
    sub_first = np.concatenate([[0], np.cumsum(sub_count)[:-1]])
    subcategory = sub_first[category] + (rng.random(count) * sub_count[category]).astype(np.int64)
    noun_count = np.array([len(nouns) for nouns in sub_nouns])
    noun_first = np.concatenate([[0], np.cumsum(noun_count)[:-1]])
    nouns = np.array([noun for group in sub_nouns for noun in group], dtype=object)
    noun = noun_first[subcategory] + (rng.random(count) * noun_count[subcategory]).astype(np.int64)
    brand = rng.integers(0, len(_BRANDS), count)
    variant = rng.integers(0, len(_VARIANTS), count)
    names = (
        pd.Series(np.array(_BRANDS, dtype=object)[brand])
        + " "
        + pd.Series(nouns[noun])
        + " "
        + pd.Series(np.array(_VARIANTS, dtype=object)[variant])
    )

    median_level = np.array([c.level for c in CATEGORIES])[category]
    sub_level = rng.lognormal(0.0, 0.3, len(sub_names))[subcategory]
    level = median_level * sub_level * rng.lognormal(0.0, 1.0, count)
    slow = rng.choice(count, size=round(config.intermittent_share * count), replace=False)
    level[slow] = rng.uniform(0.05, 0.5, slow.size)

    price = np.array([c.price for c in CATEGORIES])[category] * rng.lognormal(0.0, 0.5, count)
    elasticity = np.clip(rng.normal(config.price_elasticity, 0.3, count), -3.0, -0.3)
    growth = rng.normal(0.0, config.trend_sd, count)
    return _Products(
        code=_codes("P", count, width=5),
        name=_unique(names).to_numpy(dtype=object),
        category=category,
        subcategory=np.array(sub_names, dtype=object)[subcategory],
        level=level,
        price=np.maximum(price, 0.5),
        elasticity=elasticity,
        growth=growth,
        launch=_draw_launches(rng, config),
    )


def _draw_launches(rng: np.random.Generator, config: SyntheticConfig) -> Ints:
    launch = np.zeros(config.products, dtype=np.int64)
    wanted = round(config.launch_share * config.products)
    if config.launch_share > 0 and config.products > 1:
        wanted = max(wanted, 1)  # so that even a small assortment has a series starting late
    if config.days < 2 or wanted == 0:
        return launch
    launched = rng.choice(config.products, size=min(wanted, config.products), replace=False)
    first = max(1, config.days // 10)
    last = max(first + 1, int(config.days * 0.8))
    launch[launched] = rng.integers(first, min(last, config.days), launched.size)
    return launch


def _draw_stores(rng: np.random.Generator, config: SyntheticConfig) -> _Stores:
    count = config.stores
    index = np.arange(count)
    cities = np.array(_CITIES, dtype=object)[rng.permutation(len(_CITIES))]
    kinds = np.array(_STORE_KINDS, dtype=object)
    names = pd.Series(cities[index % len(cities)]) + " " + pd.Series(kinds[(index // len(cities)) % len(kinds)])
    size = rng.lognormal(0.0, 0.35, count)
    return _Stores(
        code=_codes("S", count, width=3),
        name=_unique(names).to_numpy(dtype=object),
        size=size / np.exp(np.log(size).mean()) if count > 1 else np.ones(1),
    )


def _codes(prefix: str, count: int, width: int) -> Objects:
    numbers = pd.Series(np.arange(1, count + 1)).astype(str).str.zfill(width)
    return (prefix + numbers).to_numpy(dtype=object)


def _unique(names: pd.Series) -> pd.Series:
    """Names made unique by numbering the repeats: "X", "X 2", "X 3"."""
    repeat = names.groupby(names).cumcount()
    return names.where(repeat == 0, names + " " + (repeat + 1).astype(str))


def _spell_cells(product: Ints, first_day: Ints, length: Ints, days: int) -> tuple[Ints, Ints, npt.NDArray[np.intp]]:
    """(product, day) cells covered by spells, and each cell's spell, clipped to the history."""
    spell = np.repeat(np.arange(length.size), length)
    offset = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    day = first_day[spell] + offset
    inside = (day >= 0) & (day < days)
    return product[spell][inside], day[inside], spell[inside]


def _draw_promotions(rng: np.random.Generator, config: SyntheticConfig) -> tuple[Floats, Bools]:
    """Per product and day: the promotion discount (0 when none) and whether demand dips after one."""
    shape = (config.products, config.days)
    shortest, longest = _PROMO_DAYS
    # Exponential propensity: some products are promoted often, some almost never.
    propensity = rng.exponential(1.0, config.products)
    expected = config.promo_share * config.days / ((shortest + longest) / 2) * propensity
    product = np.repeat(np.arange(config.products), rng.poisson(expected))
    first_day = rng.integers(-longest, config.days, product.size)
    length = rng.integers(shortest, longest + 1, product.size)
    off = rng.choice(_DISCOUNTS, size=product.size, p=_DISCOUNT_WEIGHTS)

    discount = np.zeros(shape)
    rows, cols, spell = _spell_cells(product, first_day, length, config.days)
    np.maximum.at(discount, (rows, cols), off[spell])

    dip = np.zeros(shape, dtype=bool)
    after = np.full(product.size, _DIP_DAYS)
    rows, cols, _ = _spell_cells(product, first_day + length, after, config.days)
    dip[rows, cols] = True
    dip &= discount == 0
    return discount, dip


def _draw_regular_prices(
    rng: np.random.Generator, config: SyntheticConfig, first_price: Floats, on_promotion: Bools
) -> Floats:
    """Regular (undiscounted) shelf prices per product and day, with occasional permanent steps."""
    years = config.days / 365.25
    product = np.repeat(np.arange(config.products), rng.poisson(config.price_changes_per_year * years, config.products))
    day = rng.integers(1, max(config.days, 2), product.size)
    up = rng.random(product.size) < 0.7
    size = rng.uniform(0.03, 0.12, product.size)
    # A step during a promotion or right after one would make the pre-promotion price a wrong
    # reference for the discount; real retailers also avoid repricing mid-promotion.
    blocked = np.zeros((config.products, config.days + 1), dtype=bool)
    blocked[:, :-1] |= on_promotion
    blocked[:, 1:] |= on_promotion
    keep = (day < config.days) & ~blocked[product, np.minimum(day, config.days)]

    log_step = np.zeros((config.products, config.days))
    np.add.at(log_step, (product[keep], day[keep]), np.where(up, size, -size)[keep])
    return _psychological(first_price[:, None] * np.exp(np.cumsum(log_step, axis=1)))


def _psychological(price: Floats) -> Floats:
    """Prices ending in .99 (or .x9 below 10), as shelves show them."""
    rounded: Floats = np.where(price >= 10.0, price.round(), price.round(1)) - 0.01
    return np.maximum(rounded, 0.19).round(2)


def _weekly_profiles() -> Floats:
    profiles = np.array([category.weekly for category in CATEGORIES], dtype=np.float64)
    normalised: Floats = profiles / profiles.mean(axis=1, keepdims=True)
    return normalised


def _yearly_effects(rng: np.random.Generator, dates: pd.DatetimeIndex, category: Ints) -> Floats:
    day_of_year = dates.dayofyear.to_numpy()
    angle = 2 * np.pi * day_of_year / 365.25
    summer = np.cos(angle - 2 * np.pi * 196 / 365.25)
    # Days from 24 December: a three-week build-up before it and a fast drop after Christmas.
    to_eve = day_of_year - (358 + np.asarray(dates.is_leap_year, dtype=np.int64))
    christmas = np.where(to_eve <= 0, np.exp(-0.5 * (to_eve / 18.0) ** 2), np.exp(-np.maximum(to_eve, 0) / 1.5))
    summer_amplitude = np.array([c.summer for c in CATEGORIES], dtype=np.float64)
    christmas_amplitude = np.array([c.christmas for c in CATEGORIES], dtype=np.float64)
    log_category = summer_amplitude[:, None] * summer + christmas_amplitude[:, None] * christmas

    basis = np.stack([np.sin(angle), np.cos(angle), np.sin(2 * angle), np.cos(2 * angle)])
    log_product = rng.normal(0.0, 0.06, (category.size, basis.shape[0])) @ basis
    yearly: Floats = np.exp(log_category[category] + log_product)
    return yearly


def _holiday_effect(config: SyntheticConfig) -> Floats:
    """Demand multiplier per day: holidays and the two days before them."""
    horizon = config.days + 2  # a holiday just after the history still lifts its last days
    last = config.start + datetime.timedelta(days=horizon - 1)
    offsets = (holiday_dates(config.country, config.start, last) - pd.Timestamp(config.start)).days
    is_holiday = np.zeros(horizon, dtype=bool)
    is_holiday[offsets.to_numpy()] = True
    uplift = config.holiday_uplift * is_holiday.astype(np.float64)
    eve = np.maximum(uplift[1 : config.days + 1] * 2 / 3, uplift[2 : config.days + 2] / 3)
    return 1.0 + np.maximum(uplift[: config.days], eve)


def _store_product_day_mean(
    rng: np.random.Generator, config: SyntheticConfig, store_size: Floats, product_day: Floats32
) -> Floats32:
    """Mean units per (store, product, day), gamma-mixed so that Poisson draws are negative binomial.

    The (stores, products, days) arrays are the big ones: float32 and in-place products keep them to a
    few bytes per cell."""
    shape = (config.stores, config.products, config.days)
    affinity = rng.lognormal(-0.5 * 0.25**2, 0.25, shape[:2]) * store_size[:, None]
    shock = rng.lognormal(-0.5 * 0.08**2, 0.08, (config.stores, config.days)).astype(np.float32)
    mean = np.multiply(product_day[None, :, :], affinity.astype(np.float32)[:, :, None])
    mean *= shock[:, None, :]
    if config.overdispersion > 0:
        gamma_shape = 1.0 / config.overdispersion
        mixing = rng.standard_gamma(gamma_shape, shape, dtype=np.float32)
        mixing *= np.float32(1.0 / gamma_shape)
        mean *= mixing
    return mean


def _long_frame(
    dates: pd.DatetimeIndex,
    stores: _Stores,
    products: _Products,
    on_sale: Bools,
    *,
    units: Floats,
    unit_price: Floats,
    on_promotion: Bools,
) -> pd.DataFrame:
    """Rows ordered by store, product and date; `units` is already in that order, the per-product
    arrays (`unit_price`, `on_promotion`) cover one store and repeat for each."""
    store_count = stores.code.size
    days_per_product = on_sale.sum(axis=1)
    product_rows = np.repeat(np.arange(products.code.size, dtype=np.int32), days_per_product)
    day_rows = np.nonzero(on_sale)[1].astype(np.int32)
    product_of_row = np.tile(product_rows, store_count)
    store_of_row = np.repeat(np.arange(store_count, dtype=np.int32), product_rows.size)
    unit_price_rows = np.tile(unit_price, store_count)
    category_names = np.array([c.name for c in CATEGORIES], dtype=object)
    columns = {
        "date": dates.to_numpy()[np.tile(day_rows, store_count)],
        "store": stores.code[store_of_row],
        "store_name": stores.name[store_of_row],
        "product": products.code[product_of_row],
        "product_name": products.name[product_of_row],
        "category": category_names[products.category][product_of_row],
        "subcategory": products.subcategory[product_of_row],
        "units": units,
        "unit_price": unit_price_rows,
        "revenue": np.round(units * unit_price_rows, 2),
        "on_promotion": np.tile(on_promotion, store_count),
    }
    # copy=False also skips consolidating the columns into 2-D blocks, which would copy them all.
    return pd.DataFrame(columns, columns=list(SALES_COLUMNS), copy=False)


def _dates_as_days(schema: pa.Schema) -> pa.Schema:
    """Timestamp columns as dates, so the CSV reads 2023-01-01 rather than 2023-01-01 00:00:00."""
    for index, field in enumerate(schema):
        if pa.types.is_timestamp(field.type):
            schema = schema.set(index, field.with_type(pa.date32()))
    return schema
