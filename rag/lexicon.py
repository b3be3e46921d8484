"""Word lists the claim checker uses: number words, ordinals, months, units, negation cues, antonyms,
chemical elements, countries, and the small closed classes (colours, positions) whose members are easy to
swap for one another.

Example: ``NUMBER_WORDS["twelve"] == 12`` and ``"gallium" in ELEMENTS``
"""
from __future__ import annotations

_UNITS_TO_19 = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                "sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS: dict[str, float] = {w: float(i) for i, w in enumerate(_UNITS_TO_19)}
NUMBER_WORDS |= {w: float(20 + 10 * i) for i, w in enumerate(_TENS)}
NUMBER_WORDS |= {"hundred": 100.0, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12,
                 "dozen": 12.0, "half": 0.5, "quarter": 0.25, "single": 1.0, "both": 2.0, "pair": 2.0,
                 "couple": 2.0}
# Counts of times: "twice" and "double" both say 2 (times).
TIMES_WORDS = {"once": 1.0, "twice": 2.0, "thrice": 3.0, "double": 2.0, "triple": 3.0, "quadruple": 4.0,
               "doubled": 2.0, "tripled": 3.0, "halved": 0.5}
# Number words this small are often implied without being written ("the two governments" for "Japan and
# China"), so they only count against a claim when the passage gives the same unit another number.
SOFT_VALUES = {0.5, 1.0, 2.0}

_ORDINALS_1_19 = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
                  "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth").split()
ORDINAL_WORDS: dict[str, int] = {w: i + 1 for i, w in enumerate(_ORDINALS_1_19)}
ORDINAL_WORDS |= {"twentieth": 20, "thirtieth": 30, "fortieth": 40, "fiftieth": 50, "hundredth": 100}

MONTH_NAMES = tuple("january february march april may june july august september october november december".split())
MONTHS = {m: i + 1 for i, m in enumerate(MONTH_NAMES)}
MONTHS |= {m[:3]: i for m, i in list(MONTHS.items())} | {"sept": 9}
WEEKDAYS = set("monday tuesday wednesday thursday friday saturday sunday".split())

# Units and time spans: "for months" is not "for years", "5 litres" is not "5 kilograms".
UNITS = set("""second seconds minute minutes hour hours day days week weeks month months year years decade decades
century centuries millisecond milliseconds percent per cent percentage litre litres liter liters millilitre
millilitres gram grams kilogram kilograms kg mg tonne tonnes ton tons metre metres meter meters kilometre kilometres
kilometer kilometers km cm mm mile miles inch inches foot feet volt volts watt watts kilowatt kilowatts kwh ampere
amperes amp amps hertz degree degrees celsius fahrenheit kelvin pound pounds euro euros dollar dollars yen yuan
cent cents hourly daily weekly fortnightly monthly quarterly yearly annually""".split())

COLOURS = set("red orange yellow green blue purple violet pink brown black white grey gray silver gold".split())
POSITIONS = set("top bottom upper lower front rear north south east west northern southern eastern "
                "western".split())

# Words that turn a clause negative. Multi-word cues are matched as phrases first.
NEGATION_WORDS = {"not", "no", "never", "without", "nor", "neither", "none", "nothing", "nobody", "nowhere",
                  "cannot", "cant", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont",
                  "shouldnt", "couldnt", "wouldnt", "mustnt", "hasnt", "havent", "hadnt", "neednt", "excluded",
                  "exempt", "lacks", "lacked", "lacking"}
NEGATION_PHRASES = ("rather than", "instead of", "other than", "outside the scope", "outside of the scope",
                    "not yet", "no longer", "fail to", "fails to", "failed to")
# Prefixes that negate the word they start ("incorrectly" = not correctly), when the rest is a word.
NEGATING_PREFIXES = ("un", "in", "im", "ir", "il", "dis", "non", "mis")

# Pairs of opposites (either order). A claim using one where the passage uses the other says the opposite.
_ANTONYM_PAIRS = """lift impose|lifted imposed|increase decrease|increase reduce|increased reduced|increase cut|
rise fall|rose fell|rises falls|rising falling|risen fallen|raise lower|raised lowered|grow shrink|
expand shrink|expand contract|gain lose|
gain loss|allow ban|allowed banned|permit ban|permitted banned|permit prohibit|permitted prohibited|allow prohibit|
allowed prohibited|approve reject|approved rejected|accept reject|accepted rejected|include exclude|included excluded|
hot cold|warm cold|soft hard|top bottom|upper lower|long short|longer shorter|large small|larger smaller|big small|
more less|more fewer|most least|high low|higher lower|maximum minimum|import export|imports exports|imported exported|
enhance reduce|strengthen weaken|strengthened weakened|align diverge|aligned diverged|escalate ease|escalating easing|
start stop|opened closed|always never|before after|early late|earlier later|first last|
success failure|succeed fail|win lose|won lost|support oppose|supported opposed|positive negative|
strong weak|stronger weaker|heavy light|fast slow|faster slower|cheap expensive|cheaper dearer|
mandatory optional|required optional|public private|internal external|inside outside|
add remove|added removed|add drop|adds drops|added dropped|buy sell|bought sold|above below|upgrade downgrade|
true false|loosen tighten|loosened tightened|relax tighten|
relaxed tightened|easing tightening|suspend resume|suspended resumed|enable disable|enabled disabled|
sunrise sunset|minimum maximum|majority minority|abundant scarce|surplus deficit|profit loss|export import|
dry wet|written oral|written verbal|continue stop|continued stopped|continues stops|continue discontinue|
continued discontinued|continue end|continued ended|open shut|opened shut"""
ANTONYMS: dict[str, set[str]] = {}
for _pair in _ANTONYM_PAIRS.replace("\n", "").split("|"):
    _a, _b = _pair.split()
    ANTONYMS.setdefault(_a, set()).add(_b)
    ANTONYMS.setdefault(_b, set()).add(_a)

ELEMENTS = set("""hydrogen helium lithium beryllium boron carbon nitrogen oxygen fluorine neon sodium magnesium
aluminium aluminum silicon phosphorus sulfur sulphur chlorine argon potassium calcium scandium titanium vanadium
chromium manganese iron cobalt nickel copper zinc gallium germanium arsenic selenium bromine krypton rubidium strontium
yttrium zirconium niobium molybdenum technetium ruthenium rhodium palladium silver cadmium indium tin antimony
tellurium iodine xenon caesium cesium barium lanthanum
cerium praseodymium neodymium promethium samarium europium gadolinium terbium
dysprosium holmium erbium thulium ytterbium lutetium hafnium tantalum tungsten rhenium osmium iridium platinum gold
mercury thallium lead bismuth polonium astatine radon francium radium actinium thorium protactinium uranium neptunium
plutonium americium curium berkelium californium einsteinium fermium mendelevium nobelium lawrencium graphite
steel brass bronze""".split())

COUNTRIES = set("""afghanistan albania algeria andorra angola argentina armenia australia austria azerbaijan bahamas
bahrain bangladesh barbados belarus belgium belize benin bhutan bolivia bosnia botswana brazil brunei bulgaria burkina
burundi cambodia cameroon canada chad chile china colombia comoros congo croatia cuba cyprus czechia czech denmark
djibouti dominica ecuador egypt eritrea estonia eswatini ethiopia fiji finland france gabon gambia georgia germany
ghana greece grenada guatemala guinea guyana haiti honduras hungary iceland india indonesia iran iraq ireland israel
italy jamaica japan jordan kazakhstan kenya kiribati korea kosovo kuwait kyrgyzstan laos latvia lebanon lesotho
liberia libya liechtenstein lithuania luxembourg madagascar malawi malaysia maldives mali malta mauritania mauritius
mexico micronesia moldova monaco mongolia montenegro morocco mozambique myanmar namibia nauru nepal netherlands
nicaragua niger nigeria norway oman pakistan palau palestine panama paraguay peru philippines poland portugal qatar
romania russia rwanda samoa senegal serbia seychelles singapore slovakia slovenia somalia spain sudan suriname sweden
switzerland syria taiwan tajikistan tanzania thailand togo tonga tunisia turkey turkmenistan tuvalu uganda ukraine
uruguay uzbekistan vanuatu venezuela vietnam yemen zambia zimbabwe britain england scotland wales europe asia africa
america beijing tokyo washington london paris berlin moscow seoul delhi brussels geneva""".split())

# Hedges, light verbs and attributions that carry no checkable content ("roughly", "takes", "the article says").
FILLERS = set("""roughly about approximately around nearly almost some still also just even really very quite rather
currently now already further additional take takes taking took taken make makes making made get gets got getting
put puts go goes went come comes came do done use uses used using include includes including included
according article articles document documents passage passages text texts source sources say says said states stated
notes noted mentions mentioned reports reported writes wrote based located situated following previously
formerly again back instead together""".split())

# Function words beyond the retrieval stop list: they carry no checkable content.
FUNCTION_WORDS = set("""i me my we us our you your he him his she her hers it its they them their what which who whom
whose this that these those am is are was were be been being have has had having do does did doing would should could
ought might must shall can may will a an the and but if or because as until while of at by for with about against
between into through during before after above below to from up down in out on off over under again once here there
when where why how all any each few more most other some such only own same so than too very s t just don now also
yet per via upon onto within without among amongst across along around beyond toward towards whether either every
one ones""".split())
HE = {"he", "him", "his", "himself"}
SHE = {"she", "her", "hers", "herself"}
# Element names that are also verbs: "can lead to", "iron out".
VERB_LIKE_ELEMENTS = {"lead", "iron", "tin", "zinc", "nickel", "mercury", "gold", "silver"}
# Professions and offices: "unless a doctor advises" is not "unless a pharmacist advises".
ROLES = set("""doctor doctors physician physicians nurse nurses pharmacist pharmacists dentist surgeon vet lawyer
lawyers solicitor judge accountant auditor engineer engineers technician electrician plumber teacher teachers
professor minister ministers president director directors manager managers supervisor chairman chairwoman chair
secretary treasurer ceo cfo cto coo governor mayor senator ambassador""".split())
