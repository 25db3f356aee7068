"""The words of the subject access report, in Dutch and English.

Kept apart from the layout so that a privacy officer can review what the subject reads in
one place. Plain language: the subject is not expected to know the law or the gateway.
"""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("nl", "en")

# Said when disclosures are left out under a confidentiality hold; never how many, never
# whose. Both languages go into every JSON report.
WITHHELD_STATEMENT: Final = {
    "nl": (
        "Niet alle informatie over u staat in dit overzicht. Een deel is weggelaten op grond "
        "van een wettelijke uitzondering (artikel 23 AVG en artikel 41 UAVG, en de Wet "
        "politiegegevens), bijvoorbeeld omdat een lopend onderzoek anders kan worden "
        "geschaad. Zodra de uitzondering niet meer geldt, kunt u opnieuw om inzage vragen. "
        "U kunt hierover een klacht indienen bij de Autoriteit Persoonsgegevens."
    ),
    "en": (
        "Not all information about you is in this report. Some of it has been left out under "
        "a legal exception (Article 23 GDPR and Article 41 of the Dutch GDPR Implementation "
        "Act (UAVG), and the Police Data Act (Wpg)), for instance because an ongoing "
        "investigation could otherwise be harmed. Once the exception no longer applies, you "
        "may ask for access again. You may complain about this to the Dutch Data Protection "
        "Authority (Autoriteit Persoonsgegevens)."
    ),
}

# What a mask did to a field, per transform id of gateway.core.transforms.
TRANSFORM_WORDS: Final = {
    "nl": {
        "redact": "afgeschermd: niet zichtbaar, ook niet of er iets was",
        "presence": "alleen of er iets bekend is (ja of nee)",
        "pseudonym": "vervangen door een code, zonder de inhoud",
        "initials": "alleen de voorletters",
        "year_only": "alleen het jaartal",
        "postcode_area": "alleen de cijfers van de postcode",
        "truncate": "ingekort tot de eerste tekens",
    },
    "en": {
        "redact": "hidden: not shown, not even whether there was anything",
        "presence": "only whether anything is known (yes or no)",
        "pseudonym": "replaced by a code, without the content",
        "initials": "initials only",
        "year_only": "the year only",
        "postcode_area": "the digits of the postcode only",
        "truncate": "shortened to its first characters",
    },
}

AVAILABILITY_WORDS: Final = {
    "nl": {
        "available": "verstrekt",
        "not_held": "niets aanwezig, dus niets verstrekt",
        "source_unavailable": "bron niet bereikbaar, dus niets verstrekt",
        "not_requested": "niet opgevraagd",
        "transform_failed": "kon niet worden afgeschermd, dus niets verstrekt",
        "not_asked": "geen bron aangesloten, dus niet gevraagd",
    },
    "en": {
        "available": "supplied",
        "not_held": "nothing held, so nothing supplied",
        "source_unavailable": "source not reachable, so nothing supplied",
        "not_requested": "not requested",
        "transform_failed": "could not be masked, so nothing supplied",
        "not_asked": "no source connected, so not asked",
    },
}

KIND_WORDS: Final = {
    "nl": {"disclosure": "Verstrekking", "triage": "Vraag of u bekend bent (triage)"},
    "en": {"disclosure": "Disclosure", "triage": "Question whether you are known (triage)"},
}

# Labels and paragraphs of the HTML page.
LABELS: Final[dict[str, dict[str, str]]] = {
    "nl": {
        "title": "Overzicht van verstrekkingen over u",
        "subtitle": "Inzageverzoek, artikel 15 AVG - Zorg- en Veiligheidshuis (Ketenpoort)",
        "generated": "Opgesteld op",
        "count": "Aantal verstrekkingen in dit overzicht",
        "intro": (
            "U heeft gevraagd welke gegevens over u zijn gedeeld. Partners van het Zorg- en "
            "Veiligheidshuis (zoals politie, gemeente en zorginstellingen) wisselen gegevens "
            "uit via Ketenpoort. Ketenpoort legt elke uitwisseling vast. Hieronder staat "
            "elke keer dat gegevens over u aan een partner zijn verstrekt: wanneer, aan wie, "
            "waarvoor, op welke wettelijke grond en welke soorten gegevens. De gegevens "
            "zelf staan er niet in; die kunt u opvragen bij de partner die ze heeft."
        ),
        "withheld_heading": "Niet alles staat in dit overzicht",
        "none": "Er zijn via Ketenpoort geen gegevens over u verstrekt.",
        "when": "Wanneer",
        "recipient": "Ontvanger",
        "role": "In de rol van",
        "purpose": "Doel",
        "legal_basis": "Wettelijke grond",
        "activity": "Registerverwijzing (verwerkingsactiviteit)",
        "case": "Dossier",
        "role_in_case": "Uw rol in dat dossier",
        "break_glass": "Spoedtoegang",
        "break_glass_yes": (
            "Ja: gegevens zijn met spoed gedeeld om acuut gevaar af te wenden. "
            "De functionaris gegevensbescherming controleert dit achteraf."
        ),
        "incomplete": "Niet compleet: een bron was niet bereikbaar.",
        "fields": "Welke gegevens",
        "field": "Gegeven",
        "category": "Soort",
        "shared_as": "Hoe gedeeld",
        "source": "Afkomstig van",
        "result": "Resultaat",
        "full": "volledig",
        "policy": "Versie van de afspraken",
        "record": "Logregel",
        "rights_heading": "Wat u verder kunt doen",
        "rights": (
            "Kloppen gegevens niet, dan kunt u de partner die ze heeft vragen ze te "
            "verbeteren. U kunt ook bezwaar maken of een klacht indienen bij de "
            "functionaris gegevensbescherming van het Zorg- en Veiligheidshuis of bij de "
            "Autoriteit Persoonsgegevens."
        ),
        "verify_heading": "Controleren dat dit overzicht klopt",
        "verify": (
            "Ketenpoort schrijft elke verstrekking in een logboek dat niet ongemerkt kan "
            "worden veranderd. Geregeld zet Ketenpoort een digitale handtekening onder het "
            "hele logboek (een controlepunt). Bij elke verstrekking hierboven hoort een "
            "bewijs dat die regel in het ondertekende logboek staat. Een deskundige kan dat "
            "zo nagaan:"
        ),
        "proofs_heading": "Technische bijlage: bewijzen",
        "checkpoints": "Ondertekende controlepunten",
        "no_proof": "Voor deze regel is nog geen bewijs beschikbaar.",
        "log_key": "Openbare sleutel van het logboek",
        "footer": (
            "Dit overzicht is zelf ook vastgelegd in het logboek, als regel {seq}. "
            "Uw kenmerk in het logboek (geen BSN): {pseudonym}."
        ),
        "footer_unrecorded": "Uw kenmerk in het logboek (geen BSN): {pseudonym}.",
        "policy_note": (
            "Omschrijvingen komen uit de afspraken die nu gelden ({version}); bij elke "
            "verstrekking staat de versie die toen gold."
        ),
    },
    "en": {
        "title": "Disclosures about you",
        "subtitle": "Access request, Article 15 GDPR - Zorg- en Veiligheidshuis (Ketenpoort)",
        "generated": "Prepared on",
        "count": "Number of disclosures in this report",
        "intro": (
            "You asked which information about you has been shared. The partners of the "
            "Zorg- en Veiligheidshuis (care and safety house), such as the police, the "
            "municipality and care providers, exchange information through Ketenpoort, "
            "which records every exchange. Below is every time information about you was "
            "disclosed to a partner: when, to whom, for what purpose, on which legal ground "
            "and which kinds of information. The information itself is not in this report; "
            "you can ask the partner that holds it."
        ),
        "withheld_heading": "Not everything is in this report",
        "none": "No information about you has been disclosed through Ketenpoort.",
        "when": "When",
        "recipient": "Recipient",
        "role": "Acting as",
        "purpose": "Purpose",
        "legal_basis": "Legal ground",
        "activity": "Register reference (processing activity)",
        "case": "Case",
        "role_in_case": "Your role in that case",
        "break_glass": "Emergency access",
        "break_glass_yes": (
            "Yes: information was shared urgently to avert acute danger. The data "
            "protection officer reviews this afterwards."
        ),
        "incomplete": "Incomplete: a source could not be reached.",
        "fields": "Which information",
        "field": "Item",
        "category": "Kind",
        "shared_as": "How it was shared",
        "source": "Comes from",
        "result": "Result",
        "full": "in full",
        "policy": "Version of the agreements",
        "record": "Log record",
        "rights_heading": "What else you can do",
        "rights": (
            "If information is wrong, you can ask the partner that holds it to correct it. "
            "You can also object, or complain to the data protection officer of the Zorg- "
            "en Veiligheidshuis or to the Dutch Data Protection Authority (Autoriteit "
            "Persoonsgegevens)."
        ),
        "verify_heading": "Checking that this report is right",
        "verify": (
            "Ketenpoort writes every disclosure into a log that cannot be changed unnoticed. "
            "Regularly, Ketenpoort digitally signs the whole log (a checkpoint). Each "
            "disclosure above comes with a proof that its record is in the signed log. An "
            "expert can check this as follows:"
        ),
        "proofs_heading": "Technical annex: proofs",
        "checkpoints": "Signed checkpoints",
        "no_proof": "No proof is available for this record yet.",
        "log_key": "Public key of the log",
        "footer": (
            "This report was itself recorded in the log, as record {seq}. "
            "Your reference in the log (not your BSN): {pseudonym}."
        ),
        "footer_unrecorded": "Your reference in the log (not your BSN): {pseudonym}.",
        "policy_note": (
            "Descriptions come from the agreements in force now ({version}); each "
            "disclosure names the version in force at the time."
        ),
    },
}

# Steps of the check an expert makes with the proofs, in order.
VERIFY_STEPS: Final[dict[str, tuple[str, ...]]] = {
    "nl": (
        "Controleer de handtekening onder het controlepunt met de openbare sleutel "
        "van Ketenpoort; vergelijk de sleutelcode met de code die het Zorg- en "
        "Veiligheidshuis publiceert.",
        "Bereken uit de regelcode (leaf hash), de plaats in het logboek (index), de "
        "omvang van het logboek (tree size) en de bewijscodes (path) de wortelcode, "
        "zoals RFC 9162 (paragraaf 2.1.3.2) beschrijft.",
        "Die wortelcode moet gelijk zijn aan de wortelcode in het ondertekende "
        "controlepunt. Dan staat de regel ongewijzigd in het logboek.",
        "Wilt u ook nagaan dat de regelcode bij de verstrekking hoort, vraag de "
        "functionaris gegevensbescherming dan om de volledige logregel: de regelcode is "
        "SHA-256 over een nulbyte gevolgd door die regel.",
    ),
    "en": (
        "Check the signature under the checkpoint with Ketenpoort's public key; compare "
        "the key's code with the one the Zorg- en Veiligheidshuis publishes.",
        "From the record's code (leaf hash), its place in the log (index), the size of "
        "the log (tree size) and the proof codes (path), compute the root code as "
        "RFC 9162 (section 2.1.3.2) describes.",
        "That root code must equal the root code in the signed checkpoint. The record is "
        "then in the log, unchanged.",
        "To check that the record's code belongs to the disclosure, ask the data "
        "protection officer for the full log record: the code is SHA-256 over a zero byte "
        "followed by that record.",
    ),
}


def check_language(language: str) -> str:
    """``language`` if the report speaks it; ValueError otherwise."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    return language
