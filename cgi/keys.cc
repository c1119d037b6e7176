// /keys
//   GET → the user's keys (kind, fingerprint, addresses, algorithm, validity), each
//       with its grant state: unlocked in this session (time left), unlocked in
//       another session (since when, from where), or locked; and the user's own
//       key-use history from the audit log (unlock, decrypt, sign, grants made,
//       stopped and expired), newest first.
#include "cgi/common/guard.h"
#include "cgi/common/key_pages.h"
#include "cgi/common/mailbox.h"

namespace wmk::cgi {

namespace {

constexpr int kHistoryRows = 50;

// A history entry in plain words, or nullopt for one a user does not care about: a
// grant made at an unlock (the unlock row says it), the public key read to sign or
// to encrypt to oneself. Internal words (grant ids, revoker names, ciphers, actors)
// never reach the page.
std::optional<std::string> plain_event(const webflow::HistoryEntry& h) {
  const bool ok = h.outcome == "ok";
  auto has = [&](std::string_view word) { return h.detail.find(word) != std::string::npos; };
  if (h.event == "key.unlock") {
    if (ok)
      return "Unlocked the key";
    if (h.outcome == "locked_out")
      return "Unlock refused: too many wrong passphrases, wait a while";
    return "Unlock failed: wrong passphrase";
  }
  if (h.event == "key.decrypt")
    return ok ? "Decrypted a message" : "Could not decrypt a message";
  if (h.event == "key.sign")
    return ok ? "Signed a message" : "Could not sign a message";
  if (h.event == "grant.create")
    return std::nullopt;
  if (h.event == "grant.revoke") {
    if (has("by admin"))
      return "Locked by an administrator";
    if (has("by other_session"))
      return "Locked: you stopped its use from another session";
    return "Locked by you (Lock or logout)";
  }
  if (h.event == "grant.expire") {
    if (has("not used for too long"))
      return "Locked automatically: not used for a while";
    if (has("session"))
      return "Locked: the login session ended";
    return "Locked automatically: time limit reached";
  }
  if (h.event == "grant.use")
    return "Use refused: the key was no longer unlocked";
  if (h.event == "key.export")
    return has("secret") ? std::optional<std::string>("Private key exported by an administrator")
                         : std::nullopt;
  if (h.event == "key.generate")
    return "Key created";
  if (h.event == "key.import")
    return "Key imported";
  if (h.event == "key.passwd")
    return ok ? "Key passphrase changed" : "Key passphrase change failed";
  if (h.event == "key.delete")
    return "Key deleted";
  return std::nullopt;  // nothing a user acts on
}

Html key_row(const webflow::KeyState& st, std::int64_t now) {
  const auto& k = st.key;
  std::string state;
  std::string cls;
  if (st.mine) {
    cls = "unlocked-here";
    state = "Unlocked in this session \u2014 " + time_left(st.mine->seconds_left(now));
  } else if (st.other) {
    cls = "unlocked-elsewhere";
    state = "Unlocked in another session since " + format_date(st.other->created) +
            (st.other->client_addr.empty() ? "" : " from " + st.other->client_addr);
  } else {
    cls = "locked";
    state = "Locked";
  }
  std::string emails;
  for (const auto& e : k.emails)
    emails += (emails.empty() ? "" : ", ") + e;
  std::string validity = "created " + format_date(k.created);
  if (k.expires)
    validity += ", expires " + format_date(*k.expires);
  if (k.revoked)
    validity += ", revoked";
  return fill(R"(<tr class="key {{cls}}" data-key="{{fpr}}">
<td data-label="Kind">{{kind}}</td>
<td class="fingerprint" data-label="Fingerprint"><code>{{grouped}}</code><br><span class="muted">{{algo}}; {{validity}}</span></td>
<td data-label="Addresses">{{emails}}</td>
<td class="key-grant-state" data-label="State">{{state}}</td>
</tr>
)",
              {{"cls", cls},
               {"fpr", k.fingerprint},
               {"grouped", keys::group_fingerprint(k.fingerprint)},
               {"kind", key_kind(k.type)},
               {"algo", k.algorithm},
               {"validity", validity},
               {"emails", emails},
               {"state", state}});
}

Html history_row(const webflow::HistoryEntry& h, const std::string& what,
                 const std::string& this_session) {
  std::string where;
  if (!h.session.empty())
    where = h.session == this_session ? "this session" : "another session";
  if (!h.client_addr.empty())
    where += (where.empty() ? "from " : ", from ") + h.client_addr;
  return fill(R"(<tr class="event" data-event="{{event}}" data-outcome="{{outcome}}">
<td class="date" data-label="When">{{at}}</td><td data-label="What">{{what}}</td><td data-label="Key"><code class="fingerprint">{{fpr}}</code></td><td data-label="Where">{{where}}</td>
</tr>
)",
              {{"event", h.event},
               {"outcome", h.outcome},
               {"at", format_date(h.at)},
               {"what", what},
               {"fpr", keys::group_fingerprint(h.fingerprint, 16)},
               {"where", where}});
}

Response keys_page(Context& ctx) {
  const auto& session = ctx.live_session();
  auto states = webflow::key_states(ctx.app, session);
  if (!states)
    return error_response(404, states.error().message, ctx.viewer());
  Page p = ctx.page("keys", "Your keys", Nav::keys);
  const std::int64_t now = ctx.app.clock->now();

  Html keys_html;
  if (states->empty()) {
    keys_html = Html(
        R"(<p class="empty">You have no keys here. An administrator adds them with <code>webmailkey key import</code> or <code>webmailkey key generate</code>.</p>)");
  } else {
    std::vector<Html> rows;
    for (const auto& st : *states)
      rows.push_back(key_row(st, now));
    keys_html = fill(R"(<table class="messages keys">
<thead><tr><th scope="col">Kind</th><th scope="col">Fingerprint</th><th scope="col">Addresses</th><th scope="col">State</th></tr></thead>
<tbody>
{{rows}}</tbody>
</table>)",
                     {{"rows", join(rows)}});
  }

  auto history = webflow::key_history(ctx.app, session, kHistoryRows);
  Html history_html;
  if (history.empty()) {
    history_html = Html(R"(<p class="empty">Your keys have not been used yet.</p>)");
  } else {
    std::vector<Html> rows;
    for (const auto& h : history) {
      if (auto what = plain_event(h))
        rows.push_back(history_row(h, *what, session.short_id));
    }
    history_html = fill(R"(<table class="messages history">
<thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Key</th><th scope="col">Where</th></tr></thead>
<tbody>
{{rows}}</tbody>
</table>)",
                        {{"rows", join(rows)}});
  }

  p.main = fill(R"(<h1>Your keys</h1>
{{keys}}
<h2>Key use history</h2>
<p>Every unlock, decryption and signature with your keys, and when an unlock ended. This session is <code>{{session}}</code>.</p>
{{history}})",
                {{"keys", keys_html}, {"session", session.short_id}, {"history", history_html}});
  return page_response(200, p);
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "keys", .methods = {"GET"}, .access = Access::session, .secrets = {}};
  return run(program, keys_page);
}
