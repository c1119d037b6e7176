// /keys
//   GET → the user's keys (kind, fingerprint, addresses, algorithm, validity), each
//       with its grant state: unlocked in this session (time left), unlocked in
//       another session (since when, from where), or locked; and the user's own
//       key-use history from the audit log (unlock, decrypt, sign, grants made,
//       stopped and expired), newest first; and the user's correspondents' keys
//       (fingerprint, the addresses each is bound to and by what, expiry, state), and
//       the form to import one.
//   POST csrf, action=import, key (an uploaded file) or key_text (pasted), emails
//       (optional; addresses separated by commas or blanks) → imports a correspondent's
//       OpenPGP public key or certificate bound to those addresses (or to the one
//       address it carries) with source `user`: 200 `contact-imported` with its
//       fingerprint and bindings; 400 `keys` with the form and the reason (a secret
//       key, malformed or oversized data, no or unclear address: nothing stored).
#include <stdexcept>

#include "cgi/common/guard.h"
#include "cgi/common/key_pages.h"
#include "cgi/common/mailbox.h"
#include "core/bindings/bindings.h"
#include "core/contacts/contacts.h"
#include "core/contacts/keydata.h"
#include "core/webflow/correspondents.h"

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
  keys::KeyStore store(ctx.app.db, ctx.app.config, *ctx.app.clock);
  contacts::ContactStore directory(ctx.app, store);
  auto list = directory.list(ctx.live_session().login);
  if (!list || list->empty()) {
    return Html(
        R"(<p class="empty">No correspondents' keys yet. Keys arrive in Autocrypt headers and S/MIME signatures of mail to you; you import them below or from a message that carries one, or an administrator adds them with <code>webmailkey contact import</code> or <code>webmailkey contact lookup</code>.</p>)");
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

// What the import form shows again after a refusal.
struct ImportForm {
  std::string emails;
};

Html import_form(const Context& ctx, const ImportForm& form) {
  return fill(R"(<section class="contact-import">
<h3>Import a correspondent's key</h3>
<p>An OpenPGP public key (armored or binary) or an S/MIME certificate (PEM or DER), from a file or pasted. It is bound to the addresses you name, as accepted by you; with none, to the one address the key carries. Never a private key.</p>
<form method="post" action="/keys" enctype="multipart/form-data" class="contact-import">
{{csrf}}<input type="hidden" name="action" value="import">
<p><label for="contact-key-file">Key file</label> <input type="file" id="contact-key-file" name="key" accept=".asc,.gpg,.pgp,.key,.pem,.crt,.cer,.der"></p>
<p><label for="contact-key-text">or paste it</label><br><textarea id="contact-key-text" name="key_text" rows="6" cols="72" spellcheck="false" autocomplete="off"></textarea></p>
<p><label for="contact-emails">For the addresses</label> <input type="text" id="contact-emails" name="emails" value="{{emails}}" placeholder="name@example.org" size="40"> <span class="muted">(empty: the one address the key carries)</span></p>
<p><button type="submit" class="import-contact">Import</button></p>
</form>
</section>)",
              {{"csrf", csrf_field(ctx.live_session().csrf_token)}, {"emails", form.emails}});
}

Response keys_page(Context& ctx, int status = 200, std::optional<Notice> notice = std::nullopt,
                   const ImportForm& form = {}) {
  const auto& session = ctx.live_session();
  auto states = webflow::key_states(ctx.app, session);
  if (!states)
    return error_response(404, states.error().message, ctx.viewer());
  Page p = ctx.page("keys", "Your keys", Nav::keys);
  if (notice)
    p.notice = std::move(notice);
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
<h2>Correspondents' keys</h2>
<p>A signature counts as by the sender only when its key is bound to the sender's address here (or is a key of this server's user); the addresses a key names itself bind nothing.</p>
{{contacts}}
{{import}}
<h2>Key use history</h2>
<p>Every unlock, decryption and signature with your keys, and when an unlock ended. This session is <code>{{session}}</code>.</p>
{{history}})",
                {{"keys", keys_html},
                 {"contacts", contacts_html(ctx)},
                 {"import", import_form(ctx, form)},
                 {"session", session.short_id},
                 {"history", history_html}});
  return page_response(status, p);
}

// The addresses of the emails field: separated by commas, semicolons or blanks.
std::vector<std::string> split_addresses(const std::string& field) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : field + " ") {
    if (c == ',' || c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (!cur.empty())
        out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

Response imported_page(Context& ctx, const contacts::ContactKey& k) {
  Page p = ctx.page("contact-imported", "Key imported", Nav::keys);
  std::vector<Html> bound;
  for (const auto& b : k.bindings) {
    bound.push_back(fill(
        R"(<li data-source="{{source}}" data-email="{{email}}">{{email}} <span class="muted">({{words}})</span></li>)",
        {{"source", bindings::source_name(b.source)},
         {"email", b.email},
         {"words", bindings::source_words(b.source)}}));
  }
  // An address the key does not carry is bound because the user said so: say it.
  std::vector<Html> notes;
  if (k.type == keys::KeyType::openpgp) {
    for (const auto& b : k.bindings) {
      bool carried = false;
      for (const auto& uid : k.user_ids)
        carried = carried || contacts::user_id_address(uid) == b.email;
      if (!carried)
        notes.push_back(fill(
            R"(<p class="binding-note" data-email="{{email}}">The key itself does not carry {{email}}: it is bound to that address only because you named it.</p>)",
            {{"email", b.email}}));
    }
  }
  p.notice = Notice{Notice::Kind::success, "The key was imported."};
  p.main = fill(R"(<h1>Key imported</h1>
<dl class="contact-imported">
<dt>Kind</dt><dd>{{kind}}</dd>
<dt>Fingerprint</dt><dd><code class="fingerprint" data-fingerprint="{{fpr}}">{{grouped}}</code></dd>
<dt>Bound to</dt><dd><ul class="bindings">{{bound}}</ul></dd>
</dl>
{{notes}}<p>Mail signed with this key counts as by the sender only for these addresses. <a href="/keys">Back to your keys</a></p>)",
                {{"kind", key_kind(k.type)},
                 {"fpr", k.fingerprint},
                 {"grouped", keys::group_fingerprint(k.fingerprint)},
                 {"bound", join(bound)},
                 {"notes", join(notes)}});
  return page_response(200, p);
}

Response import_contact(Context& ctx) {
  const std::string key_text = ctx.request.field("key_text").value_or("");
  // The form comes back with the addresses only: the pasted text may have been a
  // private key, which is never sent back.
  ImportForm form{ctx.request.field("emails").value_or("")};
  auto refuse = [&](const std::string& why) {
    return keys_page(ctx, 400, Notice{Notice::Kind::error, "The key was not imported: " + why},
                     form);
  };
  const UploadedFile* file = nullptr;
  for (const auto& f : ctx.request.files()) {
    if (f.field == "key" && !(f.filename.empty() && f.data.empty()))
      file = &f;
  }
  const bool pasted = key_text.find_first_not_of(" \t\r\n") != std::string::npos;
  if (file != nullptr && pasted)
    return refuse("give either a file or pasted text, not both.");
  if (file == nullptr && !pasted)
    return refuse("choose a key file or paste the key.");
  if (file != nullptr && file->data.empty())
    return refuse("the file " + file->filename + " is empty.");
  auto imported = webflow::import_contact_key(ctx.app, ctx.live_session(),
                                              file != nullptr ? file->data : key_text,
                                              split_addresses(form.emails));
  if (!imported) {
    if (imported.code() == Errc::invalid_argument || imported.code() == Errc::corrupt ||
        imported.code() == Errc::unsupported)
      return refuse(imported.error().message + ".");
    throw std::runtime_error("importing a contact key failed: " + imported.error().message);
  }
  return imported_page(ctx, *imported);
}

Response keys(Context& ctx) {
  if (!ctx.request.is_post())
    return keys_page(ctx);
  if (ctx.request.field("action").value_or("") != "import")
    return error_response(400, "Unknown action.", ctx.viewer());
  return import_contact(ctx);
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{
      .name = "keys", .methods = {"GET", "POST"}, .access = Access::session, .secrets = {}};
  return run(program, keys);
}
