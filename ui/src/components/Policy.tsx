// Policy: the rules in force (which calls run, which wait for a person, which are refused),
// why an edit of the policy file was refused, the grants that stand in for approvals (with a
// one-click Revoke), and the people decisions are made for.
import { useState } from "react";
import { useAction } from "../action";
import { listGrants, policyInfo, revokeGrant } from "../api";
import type { GrantRow } from "../bindings/GrantRow";
import type { GrantState } from "../bindings/GrantState";
import type { Person } from "../bindings/Person";
import type { PolicyView } from "../bindings/PolicyView";
import type { RuleEffect } from "../bindings/RuleEffect";
import type { RuleView } from "../bindings/RuleView";
import { ago, formatDateTime, formatExact, orWords, timeLeft } from "../format";
import { grantScope, grantWhere } from "../grants";
import { useLive } from "../live";
import type { Load } from "../live";
import { FilePath } from "./FilePath";
import { NotReady, PanelHeader } from "./Panel";
import { When } from "./When";

const EFFECT_TONE: Record<RuleEffect, string> = {
  allow: "good",
  require_approval: "attention",
  deny: "bad",
};

const GRANT_LABEL: Record<GrantState, string> = {
  in_force: "In force",
  revoked: "Revoked",
  used_up: "Used up",
  expired: "Expired",
};

/** Which calls a rule selects, in words: "support.issue_refund in support-refund, when …". */
function selection(rule: RuleView): string {
  const parts: string[] = [];
  parts.push(rule.tools.length > 0 ? `calls to ${orWords(rule.tools)}` : "any call");
  if (rule.servers.length > 0) parts.push(`on server ${orWords(rule.servers)}`);
  if (rule.workflows.length > 0) parts.push(`in ${orWords(rule.workflows)}`);
  if (rule.roles.length > 0) parts.push(`for role ${orWords(rule.roles)}`);
  if (rule.risk.length > 0) parts.push(`of ${orWords(rule.risk)} risk`);
  return parts.join(" ");
}

function capital(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function effectWords(rule: RuleView): string {
  switch (rule.effect) {
    case "allow":
      return "runs without asking";
    case "require_approval":
      return `waits for ${rule.effect_words}`;
    case "deny":
      return `is refused: ${rule.effect_words}`;
  }
}

function personName(person: Person): string {
  return person.display_name === null ? person.name : `${person.display_name}, ${person.name}`;
}

function roles(list: readonly string[]): string {
  return list.length === 0 ? "no roles" : list.join(", ");
}

export function Policy({ now }: { now: number }) {
  const [policy, reloadPolicy] = useLive(policyInfo, () => false);
  const [grants, reloadGrants] = useLive(listGrants);

  return (
    <section className="panel wide" aria-labelledby="policy-title">
      <PanelHeader
        id="policy-title"
        title="Policy"
        lede={
          <>
            Which tool calls run, which wait for a person, and which are refused; and the grants
            that stand in for approvals.
          </>
        }
        onRefresh={() => {
          reloadPolicy();
          reloadGrants();
        }}
      />

      <NotReady load={policy} loading="Reading the policy…" failed="Airlock could not read the policy." />
      {policy.state === "ready" && <InForce view={policy.data} />}

      <Grants load={grants} now={now} onChanged={reloadGrants} />

      {policy.state === "ready" && policy.data.file !== null && <Rules view={policy.data} />}
      {policy.state === "ready" && <People view={policy.data} />}
    </section>
  );
}

/** Where the policy comes from and which version is in force, or what to do without one. */
function InForce({ view }: { view: PolicyView }) {
  if (view.file === null) {
    return (
      <div className="card empty">
        <h2>No policy file: every tool call is refused</h2>
        <p>
          Without a policy, Airlock denies every tool call. Write one at{" "}
          {view.looked_for.map((path, index) => (
            <span key={path}>
              {index > 0 && " or "}
              <FilePath path={path} />
            </span>
          ))}
          ; it takes effect as soon as it validates. <code>airlock policy check</code> shows what
          is wrong with a draft.
        </p>
      </div>
    );
  }
  return (
    <>
      {view.problems.length > 0 && (
        <div className="error" role="alert">
          <strong>The policy file was changed, but the change was refused.</strong>
          <p>
            The version below stays in force until the file validates again. Fix{" "}
            {view.problems.length === 1 ? "this" : `these ${String(view.problems.length)} problems`}:
          </p>
          <ul className="problems">
            {view.problems.map((problem) => (
              <li key={`${String(problem.line)}:${String(problem.column)}:${problem.code}`}>
                <FilePath path={problem.file} suffix={`:${String(problem.line)}:${String(problem.column)}`} />{" "}
                {problem.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      <p className="in-force">
        In force: version {view.label !== null && <strong>{view.label}</strong>}{" "}
        <code className="muted" title="The first 12 hex digits of the SHA-256 of the file">
          {view.version}
        </code>{" "}
        of <FilePath path={view.file} />, {view.rules.length === 1 ? "1 rule" : `${String(view.rules.length)} rules`}.
      </p>
    </>
  );
}

/** The groups rules are shown in: what waits for people first, then what is refused. */
const GROUPS: readonly { effect: RuleEffect; title: string }[] = [
  { effect: "require_approval", title: "Wait for a person" },
  { effect: "deny", title: "Refused" },
  { effect: "allow", title: "Run without asking" },
];

function Rules({ view }: { view: PolicyView }) {
  return (
    <div className="card flush" aria-labelledby="rules-title">
      <div className="card-intro">
        <h2 id="rules-title">Rules</h2>
        <p className="hint">
          When several rules match a call, the strictest wins: refused, then wait for a person,
          then run. A call no rule matches is refused.
        </p>
      </div>
      {view.rules.length === 0 && (
        <p className="card-intro muted">The file has no rules, so every call is refused.</p>
      )}
      {GROUPS.map((group) => {
        const rules = view.rules.filter((rule) => rule.effect === group.effect);
        if (rules.length === 0) return null;
        return (
          <section key={group.effect} className="rule-group" aria-label={group.title}>
            <h3>
              <span className={`pill pill-${EFFECT_TONE[group.effect]}`}>{group.title}</span>{" "}
              <span className="muted">{rules.length === 1 ? "1 rule" : `${String(rules.length)} rules`}</span>
            </h3>
            <ol className="rules">
              {rules.map((rule) => (
                <li key={`${String(rule.line)}-${rule.name}`} aria-label={rule.name}>
                  <p className="rule-name">
                    {rule.name} <span className="muted line">line {rule.line}</span>
                  </p>
                  {rule.description !== null && <p className="muted">{rule.description}</p>}
                  <p>
                    {capital(selection(rule))}
                    {rule.when !== null && (
                      <>
                        {" "}
                        when <code>{rule.when}</code>
                      </>
                    )}{" "}
                    {effectWords(rule)}.
                  </p>
                </li>
              ))}
            </ol>
          </section>
        );
      })}
    </div>
  );
}

function GrantLine({
  grant,
  now,
  onChanged,
}: {
  grant: GrantRow;
  now: number;
  onChanged: () => void;
}) {
  const { busy, failure, run } = useAction();
  const live = grant.state === "in_force";
  const revoke = () => {
    // Revoked or not, the list is read again: a failure may mean it had ended already.
    run(() => revokeGrant(grant.id), onChanged, onChanged);
  };
  return (
    <tr aria-label={grantScope(grant)}>
      <td>
        <code className="strong">{grant.tool}</code>
        <p>{grantWhere(grant)}</p>
        {grant.note !== null && <p className="muted">{grant.note}</p>}
        {failure !== null && <p className="bad-text">Not revoked: {failure}</p>}
      </td>
      <td className="nowrap">
        {grant.uses}
        {grant.max_uses !== null && ` of ${String(grant.max_uses)}`}
      </td>
      <td
        className="nowrap"
        title={grant.expires_at === null ? undefined : formatExact(grant.expires_at)}
      >
        {grant.state === "revoked" && grant.revoked_at !== null
          ? `revoked ${ago(grant.revoked_at, now)}${grant.revoked_by === null ? "" : ` by ${grant.revoked_by}`}`
          : grant.expires_at === null
            ? "until revoked"
            : live
              ? timeLeft(grant.expires_at, now)
              : formatDateTime(grant.expires_at)}
      </td>
      <td>
        {grant.created_by}
        <p className="muted">
          <When at={grant.created_at} now={now} />
          {grant.from_approval !== null && (
            <span title={`Approval ${grant.from_approval}`}>, with an approval</span>
          )}
        </p>
      </td>
      <td className="end">
        {live ? (
          <button
            type="button"
            className="button small"
            disabled={busy}
            onClick={revoke}
            aria-label={`Revoke ${grantScope(grant)}`}
          >
            Revoke
          </button>
        ) : (
          <span className="pill pill-quiet">{GRANT_LABEL[grant.state]}</span>
        )}
      </td>
    </tr>
  );
}

function Grants({
  load,
  now,
  onChanged,
}: {
  load: Load<GrantRow[]>;
  now: number;
  onChanged: () => void;
}) {
  const [showEnded, setShowEnded] = useState(false);
  const all = load.state === "ready" ? load.data : [];
  const inForce = all.filter((grant) => grant.state === "in_force");
  const ended = all.filter((grant) => grant.state !== "in_force");
  const shown = showEnded ? [...inForce, ...ended] : inForce;
  return (
    <div className="card" aria-labelledby="grants-title">
      <div className="card-head">
        <h2 id="grants-title">Grants</h2>
        {ended.length > 0 && (
          <button
            type="button"
            className="button link"
            onClick={() => {
              setShowEnded(!showEnded);
            }}
          >
            {showEnded ? "Hide ended grants" : `Show ${String(ended.length)} ended`}
          </button>
        )}
      </div>
      <NotReady load={load} loading="Loading grants…" failed="Airlock could not list the grants." />
      {load.state === "ready" && shown.length === 0 && (
        <p className="muted">
          No grant is in force. To let calls like a held one through for a while, approve it with{" "}
          <strong>Approve and grant</strong> in Approvals.
        </p>
      )}
      {shown.length > 0 && (
        <table className="table grants">
          <thead>
            <tr>
              <th scope="col">Lets through</th>
              <th scope="col">Used</th>
              <th scope="col">Ends</th>
              <th scope="col">Given by</th>
              <th scope="col">
                <span className="sr-only">Action</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {shown.map((grant) => (
              <GrantLine key={grant.id} grant={grant} now={now} onChanged={onChanged} />
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function People({ view }: { view: PolicyView }) {
  const me = view.acting_as;
  return (
    <div className="card" aria-labelledby="people-title">
      <h2 id="people-title">People</h2>
      <p>
        You decide as <strong>{personName(me)}</strong>
        {me.listed ? "" : ", who is not listed, so has the default roles"}: {roles(me.roles)}.
      </p>
      {!view.approver_roles_checked ? (
        <p className="muted">
          There is no <code>identities.toml</code>, so anyone may decide an approval (a rule with
          four eyes still keeps the requester from approving their own call).
        </p>
      ) : (
        <>
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Identity</th>
                <th scope="col">Name</th>
                <th scope="col">Roles</th>
              </tr>
            </thead>
            <tbody>
              {view.people.map((person) => (
                <tr key={person.name}>
                  <td>
                    <code>{person.name}</code>
                  </td>
                  <td>{person.display_name ?? ""}</td>
                  <td>{roles(person.roles)}</td>
                </tr>
              ))}
              <tr>
                <td className="muted" colSpan={2}>
                  Anyone else
                </td>
                <td>{roles(view.default_roles)}</td>
              </tr>
            </tbody>
          </table>
          {view.identities_file !== null && (
            <p className="hint">
              From <FilePath path={view.identities_file} />
            </p>
          )}
        </>
      )}
    </div>
  );
}
