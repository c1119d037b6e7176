// /keys
//   GET → the user's keys (kind, fingerprint, addresses, algorithm, validity), each
//       with its grant state: unlocked in this session (time left), unlocked in
//       another session (since when, from where), or locked; and the user's own
//       key-use history from the audit log (unlock, decrypt, sign, grants made,
//       stopped and expired), newest first; and the user's correspondents' keys
//       (fingerprint, the addresses each is bound to and by what, expiry, state).
#include "cgi/common/guard.h"
#include "cgi/common/key_pages.h"
#include "cgi/common/mailbox.h"
#include "core/bindings/bindings.h"
#include "core/contacts/contacts.h"

namespace wmk::cgi {

namespace {

constexpr int kHistoryRows = 50;

std::string event_label(const std::string& event, const std::string& outcome) {
  struct Label {
    const char* event;
    const char* text;
  };
  static constexpr Label kLabels[] = {
      {"key.unlock", "Unlock"},
      {"key.decrypt", "Decrypt"},
      {"key.sign", "Sign"},
      {"grant.create", "Unlock for a session"},
      {"grant.revoke", "Unlock stopped"},
      {"grant.expire", "Unlock ended (time limit)"},
      {"grant.use", "Unlock refused"},
      {"key.generate", "Key created"},
      {"key.import", "Key imported"},
      {"key.passwd", "Passphrase changed"},
      {"key.export", "Key exported"},
  };
  std::string text = event;
  for (const auto& l : kLabels) {
    if (event == l.event)
      text = l.text;
  }
  if (outcome != "ok")
    text += " (" + outcome + ")";
  return text;
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
<td class="fingerprint" data-label="Fingerprint"><code>{{fpr}}</code><br><span class="muted">{{algo}}; {{validity}}</span></td>
<td data-label="Addresses">{{emails}}</td>
<td class="key-grant-state" data-label="State">{{state}}</td>
</tr>
)",
              {{"cls", cls},
               {"fpr", k.fingerprint},
               {"kind", key_kind(k.type)},
               {"algo", k.algorithm},
               {"validity", validity},
               {"emails", emails},
               {"state", state}});
}

Html history_row(const webflow::HistoryEntry& h) {
  return fill(R"(<tr class="event" data-event="{{event}}" data-outcome="{{outcome}}">
<td class="date" data-label="When">{{at}}</td><td data-label="What">{{what}}</td><td data-label="Key"><code>{{fpr}}</code></td><td data-label="Session">{{session}}</td><td data-label="From">{{addr}}</td><td class="detail" data-label="Details">{{detail}}</td>
</tr>
)",
              {{"event", h.event},
               {"outcome", h.outcome},
               {"at", format_date(h.at)},
               {"what", event_label(h.event, h.outcome)},
               {"fpr", h.fingerprint.substr(0, 16)},
               {"session", h.session},
               {"addr", h.client_addr},
               {"detail", h.detail}});
}

// One correspondent's key: fingerprint, the addresses it is bound to with each
// binding's source, expiry and whether it may be used to encrypt (and why not).
Html contact_row(const contacts::ContactKey& k) {
  std::vector<Html> bound;
  for (const auto& b : k.bindings) {
    bound.push_back(fill(
        R"(<li data-source="{{source}}">{{email}} <span class="muted">({{words}})</span></li>)",
        {{"source", bindings::source_name(b.source)},
         {"email", b.email},
         {"words", bindings::source_words(b.source)}}));
  }
  std::string state =
      k.state == contacts::KeyState::usable
          ? std::string("Usable")
          : std::string("Not used to encrypt: ") + contacts::key_state_words(k.state);
  return fill(R"(<tr class="contact" data-contact="{{fpr}}" data-state="{{state_name}}">
<td data-label="Kind">{{kind}}</td>
<td class="fingerprint" data-label="Fingerprint"><code>{{fpr}}</code></td>
<td data-label="Bound to"><ul class="bindings">{{bound}}</ul></td>
<td data-label="Expires">{{expires}}</td>
<td data-label="State">{{state}}</td>
</tr>
)",
              {{"fpr", k.fingerprint},
               {"state_name", contacts::key_state_name(k.state)},
               {"kind", key_kind(k.type)},
               {"bound", join(bound)},
               {"expires", k.expires ? format_date(*k.expires) : std::string("never")},
               {"state", state}});
}

Html contacts_html(Context& ctx) {
  keys::KeyStore store(ctx.app);
  contacts::ContactStore directory(ctx.app, store);
  auto list = directory.list(ctx.live_session().login);
  if (!list || list->empty()) {
    return Html(
        R"(<p class="empty">No correspondents' keys yet. Keys arrive in Autocrypt headers of mail to you, or an administrator adds them with <code>webmailkey contact import</code> or <code>webmailkey contact lookup</code>.</p>)");
  }
  std::vector<Html> rows;
  for (const auto& k : *list)
    rows.push_back(contact_row(k));
  return fill(R"(<table class="messages contacts">
<thead><tr><th scope="col">Kind</th><th scope="col">Fingerprint</th><th scope="col">Bound to</th><th scope="col">Expires</th><th scope="col">State</th></tr></thead>
<tbody>
{{rows}}</tbody>
</table>)",
              {{"rows", join(rows)}});
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
    for (const auto& h : history)
      rows.push_back(history_row(h));
    history_html = fill(R"(<table class="messages history">
<thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Key</th><th scope="col">Session</th><th scope="col">From</th><th scope="col">Details</th></tr></thead>
<tbody>
{{rows}}</tbody>
</table>)",
                        {{"rows", join(rows)}});
  }

  p.main = fill(R"(<h1>Your keys</h1>
{{keys}}
<h2>Correspondents' keys</h2>
<p>A signature counts as by the sender only when its key is bound to the sender's address here (or is a key of this server's user); the addresses a key names itself bind nothing.</p>
{{contacts}}
<h2>Key use history</h2>
<p>Every unlock, decryption and signature with your keys, and when an unlock ended. This session is <code>{{session}}</code>.</p>
{{history}})",
                {{"keys", keys_html},
                 {"contacts", contacts_html(ctx)},
                 {"session", session.short_id},
                 {"history", history_html}});
  return page_response(200, p);
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "keys", .methods = {"GET"}, .access = Access::session, .secrets = {}};
  return run(program, keys_page);
}
