"""The clinical knowledge base: ``ketapath knowledge check|references|findings|conditions|
diagnosis|adverse-effects``."""

from __future__ import annotations

import typer

from ketapath.cli.output import EXIT_INVALID, emit_json, fail

knowledge_app = typer.Typer(help="The clinical knowledge base.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(knowledge_app, name="knowledge")


@knowledge_app.command("check")
def knowledge_check() -> None:
    """Validate every knowledge file against its schema and print what was loaded."""
    from ketapath.knowledge.base import KnowledgeError
    from ketapath.knowledge.clinical import knowledge
    from ketapath.knowledge.evidence import evidence
    from ketapath.knowledge.fhir import fhir_codes
    from ketapath.knowledge.instruments import load_instruments
    from ketapath.knowledge.ledger import ledger_rules
    from ketapath.knowledge.letters import letter_rules
    from ketapath.knowledge.outcomes import outcome_rules
    from ketapath.knowledge.pk_models import load_pk_input_bounds, load_pk_knowledge
    from ketapath.knowledge.registry import registry_rules
    from ketapath.knowledge.safe_harbor import safe_harbor
    from ketapath.knowledge.safety import safety_checks

    try:
        kb = knowledge()
        instruments = load_instruments()
        ledger = ledger_rules()
        outcomes = outcome_rules()
        pk_models, analgesia = load_pk_knowledge()
        load_pk_input_bounds()
        safety = safety_checks()
        letters = letter_rules()
        studies = evidence()
        codes = fhir_codes()
        harbor = safe_harbor()
        registry = registry_rules()
    except (KnowledgeError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for name in kb.FILES:
        f = getattr(kb, name)
        typer.echo(f"{name}: version {f.version}, {len(f.entries)} entries")
    typer.echo(f"instruments: {len(instruments)} instruments")
    typer.echo(f"pk_models: {len(pk_models)} models, {len(analgesia)} analgesia models")
    typer.echo("pk_input_bounds: weight, age, height, rate, bolus and time bounds")
    requirements = sum(len(r.requirements) for r in ledger.reports.values())
    typer.echo(
        f"ledger_rules: version {ledger.version}, {len(ledger.reports)} reports, "
        f"{requirements} requirements"
    )
    typer.echo(
        f"outcome_rules: version {outcomes.version}, {len(outcomes.follow_up.timepoints)} "
        f"follow-up timepoints, {len(outcomes.safety.checks)} safety checks"
    )
    typer.echo(f"safety_checks: version {safety.version}, {len(safety.entries)} checks")
    typer.echo(
        f"letter_rules: version {letters.version}, {len(letters.kinds)} kinds of letter, "
        f"{len(letters.seek_help)} rules for seeking help"
    )
    typer.echo(
        f"evidence: version {studies.version}, {len(studies.entries)} studies, "
        f"{len(studies.recommendations)} recommendations"
    )
    coded = sum(1 for e in codes.entries if e.loinc)
    typer.echo(
        f"fhir_codes: version {codes.version}, {len(codes.entries)} observations "
        f"({coded} with a LOINC code)"
    )
    typer.echo(
        f"safe_harbor: version {harbor.version}, {len(harbor.identifiers)} identifiers, "
        f"{len(harbor.zip.restricted_prefixes)} restricted ZIP areas"
    )
    typer.echo(
        f"registry_rules: version {registry.version}, {len(registry.regression.covariates)} "
        f"regression covariates, at least {registry.regression.min_events_per_variable} "
        "events per covariate"
    )


@knowledge_app.command("references")
def knowledge_references(
    ref_id: str = typer.Argument("", help="One reference id (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """The bibliography: every work a rule, limit or value cites, as full references."""
    from ketapath.knowledge.clinical import knowledge

    refs = knowledge().bibliography
    if ref_id and ref_id not in refs:
        fail(f"no reference {ref_id!r}", code=EXIT_INVALID, as_json=as_json, field="ref_id")
    chosen = [refs.get(ref_id)] if ref_id else list(refs.references)
    if as_json:
        emit_json([{**r.model_dump(mode="json"), "full": r.full(), "link": r.link} for r in chosen])
        return
    for r in chosen:
        typer.echo(f"{r.id}  [{r.short}]\n  {r.full()}\n  checked: {r.verified}")


def findings_markdown() -> str:
    """The catalogue of finding codes as the Markdown of docs/findings.md."""
    from ketapath.domain.findings import citation_text
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    lines = [
        "# Finding codes",
        "",
        "Every warning, recommendation and limit that ketapath shows is a finding: plain words",
        "first, then the rule and its citations, with one of the codes below. Severity: **hard**",
        "cannot be passed by anyone; **soft** passes only with a named physician's override and a",
        "written reason; **warning** needs attention but does not gate; **info** is for",
        "information. A code ending in `*` is a family: one code per entry of the named file.",
        "",
        "Written from `src/ketapath/knowledge/data/finding_codes.yaml` by",
        "`ketapath knowledge findings --markdown` (a test checks that this page is current).",
        "",
        "| code | engine | severities | meaning | rule | source |",
        "|---|---|---|---|---|---|",
    ]
    for c in kb.finding_codes.entries:
        source = (
            citation_text(c.source)
            if c.source
            else f"each entry of `{c.source_from}`"
            if c.is_family
            else f"the rule's own source in `{c.source_from}`"
        )
        lines.append(
            f"| `{c.code}` | {c.engine} | {', '.join(c.severities)} | {c.meaning} | {c.rule} "
            f"| {source} |"
        )
    return "\n".join(lines) + "\n"


@knowledge_app.command("findings")
def knowledge_findings(
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print docs/findings.md."),
) -> None:
    """The catalogue of finding codes: meaning, severities, rule and source of each."""
    from ketapath.domain.findings import citation_text
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    if markdown:
        typer.echo(findings_markdown(), nl=False)
        return
    if as_json:
        emit_json(
            [kb.bibliography.public(c.model_dump(mode="json")) for c in kb.finding_codes.entries]
        )
        return
    for c in kb.finding_codes.entries:
        source = citation_text(c.source) if c.source else f"each entry of {c.source_from}"
        typer.echo(f"{c.code}  [{', '.join(c.severities)}]  {c.meaning}\n  source: {source}")


def conditions_markdown() -> str:
    """The diagnosis vocabulary as the Markdown of docs/conditions.md."""
    from ketapath.domain.findings import citation_text
    from ketapath.domain.vocabulary import describe
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    lines = [
        "# The diagnosis vocabulary",
        "",
        "Every condition that screening understands, with the names, synonyms and abbreviations",
        "it recognises and its codes. How written diagnoses are matched (case, spelling,",
        "qualifiers such as 'history of' or '(left arm)', negation and uncertainty, ambiguous",
        "words, codes by longest prefix) is in",
        "[patient-file.md](patient-file.md#how-diagnoses-are-matched).",
        'Try a wording with `ketapath knowledge diagnosis "TEXT"`.',
        "",
        "Written from `src/ketapath/knowledge/data/conditions.yaml` by",
        "`ketapath knowledge conditions --markdown` (a test checks that this page is current).",
        "ICD-11 codes are of the WHO MMS release 2024-01; 'earlier' codes are of release 2019-04",
        "and are still matched; 'broader' categories are shown but never matched.",
        "",
    ]
    for kind, title in (
        ("indication", "Indications"),
        ("comorbidity", "Comorbidities"),
        ("state", "States"),
    ):
        lines += [f"## {title}", ""]
        for cond in (c for c in kb.conditions.entries if c.kind == kind):
            d = describe(cond, kb)
            lines += [f"### {cond.name}", "", f"- id: `{cond.id}`; screening: {d['screening']}"]
            codes = [f"ICD-10-CM {', '.join(cond.icd10cm) or 'none'}"]
            codes.append(f"ICD-11 {', '.join(cond.icd11) or 'none'}")
            if cond.icd11_earlier:
                codes.append(f"earlier ICD-11 {', '.join(cond.icd11_earlier)}")
            if cond.icd11_broader:
                codes.append(f"broader ICD-11 {', '.join(cond.icd11_broader)}")
            if cond.snomed_ct:
                codes.append(f"SNOMED CT {', '.join(cond.snomed_ct)}")
            lines.append(f"- codes: {'; '.join(codes)}")
            if cond.synonyms:
                lines.append(f"- names: {', '.join(cond.synonyms)}")
            if cond.abbreviations:
                lines.append(f"- abbreviations: {', '.join(cond.abbreviations)}")
            lines.append(f"- source: {citation_text(cond.source)}")
            lines.append("")
    lines += [
        "## Ambiguous words (never guessed)",
        "",
        "Written alone, these are reported as ambiguous (`input:ambiguous-diagnosis`) with their",
        "meanings; write the diagnosis out in full.",
        "",
        "| written | may mean |",
        "|---|---|",
    ]
    for amb in kb.conditions.ambiguous:
        meanings = "; ".join(
            m.meaning + (f" (`{m.condition}`)" if m.condition else "") for m in amb.meanings
        )
        lines.append(f"| {', '.join(amb.terms)} | {meanings} |")
    return "\n".join(lines) + "\n"


@knowledge_app.command("conditions")
def knowledge_conditions(
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print docs/conditions.md."),
) -> None:
    """The diagnosis vocabulary: names, synonyms, abbreviations, codes, screening role."""
    from ketapath.domain.vocabulary import describe
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    if markdown:
        typer.echo(conditions_markdown(), nl=False)
        return
    if as_json:
        emit_json(
            {
                "conditions": [
                    {**describe(c, kb), "source": kb.bibliography.public(c.source.model_dump())}
                    for c in kb.conditions.entries
                ],
                "ambiguous": [
                    {"terms": a.terms, "meanings": [m.model_dump() for m in a.meanings]}
                    for a in kb.conditions.ambiguous
                ],
            }
        )
        return
    for c in kb.conditions.entries:
        d = describe(c, kb)
        typer.echo(f"{c.id}  {c.name}  [{d['screening']}]")
        typer.echo(f"  ICD-10-CM {', '.join(c.icd10cm) or '-'}; ICD-11 {', '.join(c.icd11) or '-'}")
        words = [*c.synonyms, *c.abbreviations]
        if words:
            typer.echo(f"  also: {', '.join(words)}")


@knowledge_app.command("diagnosis")
def knowledge_diagnosis(
    texts: list[str] = typer.Argument(..., help="Diagnoses as written (names, codes...)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """How ketapath reads written diagnoses: the condition, its codes, or why not."""
    from ketapath.domain.vocabulary import resolution_dict, resolve
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    results = [resolution_dict(resolve(t, kb), kb) for t in texts]
    if as_json:
        emit_json(results)
        return
    for r in results:
        typer.echo(r["explanation"])
        cond = r["condition"]
        if isinstance(cond, dict):
            typer.echo(
                f"  {cond['id']}: ICD-10-CM {', '.join(cond['icd10cm']) or '-'}; "
                f"ICD-11 {', '.join(cond['icd11']) or '-'}; screening: {cond['screening']}"
            )


@knowledge_app.command("adverse-effects")
def knowledge_adverse_effects(as_json: bool = typer.Option(False, "--json")) -> None:
    """The adverse effects of subanaesthetic ketamine (ASRA/AAPM/ASA consensus, Table 4)."""
    from ketapath.domain.findings import citation_text
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    effects = kb.adverse_effects.entries
    if as_json:
        emit_json([kb.bibliography.public(e.model_dump(mode="json")) for e in effects])
        return
    for e in effects:
        typer.echo(f"{e.name}: {', '.join(e.manifestations)}  [{citation_text(e.source)}]")
        for c in e.comments:
            typer.echo(f"  - {c}")
