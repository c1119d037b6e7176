#include "cgi/common/compose_flow.h"

#include <algorithm>
#include <cctype>

#include "core/auth/users.h"
#include "core/mail/drafts.h"
#include "core/mail/mime.h"
#include "core/util/encoding.h"
#include "core/webflow/flow.h"

namespace wmk::cgi {

namespace {

// Longest part of the raw message shown on the review page.
constexpr std::size_t kMaxRawShown = 256 * 1024;
// The most attachments one message carries.
constexpr std::size_t kMaxAttachments = 50;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Html checked(bool on) {
  return on ? Html(" checked") : Html();
}

std::string technology_title(mail::Technology t) {
  return t == mail::Technology::smime ? "S/MIME" : "OpenPGP";
}

std::string with_prefix(std::string_view prefix, const std::string& subject) {
  std::string l = lower(subject);
  std::string p = lower(prefix);
  if (l.rfind(p, 0) == 0)
    return subject;
  return std::string(prefix) + " " + subject;
}

std::string quote_lines(const std::string& text) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    std::size_t end = nl == std::string::npos ? text.size() : nl;
    std::string_view line(text.data() + start, end - start);
    out += line.empty() || line.front() == '>' ? ">" : "> ";
    out += line;
    out += '\n';
    start = end + 1;
  }
  return out;
}

std::string address_list_text(const std::vector<mail::Address>& list) {
  std::string out;
  for (const auto& a : list)
    out += (out.empty() ? "" : ", ") + a.display();
  return out;
}

std::optional<mail::Technology> technology_from(std::string_view text) {
  if (text == "openpgp")
    return mail::Technology::openpgp;
  if (text == "smime")
    return mail::Technology::smime;
  return std::nullopt;
}

bool flag_field(const Request& r, std::string_view name) {
  return r.field(name) == "1";
}

}  // namespace

const char* after_unlock_name(AfterUnlock a) {
  return a == AfterUnlock::sign ? "sign" : "edit";
}

std::optional<AfterUnlock> after_unlock_from(std::string_view text) {
  if (text == "sign")
    return AfterUnlock::sign;
  if (text == "edit")
    return AfterUnlock::edit;
  return std::nullopt;
}

// ---- ComposeSession

Result<std::unique_ptr<ComposeSession>> ComposeSession::open(Context& ctx) {
  auto box = UserMailbox::open(ctx.app, ctx.live_session());
  if (!box)
    return box.error();
  return std::make_unique<ComposeSession>(ctx, std::move(box).value());
}

ComposeSession::ComposeSession(Context& ctx, std::unique_ptr<UserMailbox> box)
    : ctx_(ctx),
      box_(std::move(box)),
      access_(ctx),
      transport_(ctx.app.config.sendmail),
      outbox_(box_->maildir(), access_.keys(), transport_, *ctx.app.clock) {}

Response ComposeSession::finish(Response r) {
  access_.add_cookies(r);
  return r;
}

Page ComposeSession::page(std::string name, std::string title) {
  // The key banner comes with the page (Context::page).
  return ctx_.page(std::move(name), std::move(title), Nav::compose);
}

Result<keys::KeyInfo> ComposeSession::draft_key(const std::string& draft_id) {
  auto meta = outbox_.draft_meta(draft_id);
  if (!meta)
    return meta.error();
  auto from = outbox_.draft_sender(draft_id);
  if (!from)
    return from.error();
  return outbox_.sender_key(from->address, meta->technology);
}

Response ComposeSession::compose(int status, const mail::Draft& d, const std::string& draft_id,
                                 std::optional<Notice> notice) {
  Page p = page("compose", d.subject.empty() ? "New message" : d.subject);
  if (notice)
    p.notice = notice;
  const auto& user = box_->user();
  std::vector<Html> from_options;
  for (const auto& e : user.emails) {
    bool sel = lower(e) == lower(d.from.address);
    from_options.push_back(fill(R"(<option value="{{v}}"{{sel}}>{{v}}</option>)",
                                {{"v", e}, {"sel", sel ? Html(" selected") : Html()}}));
  }
  std::vector<Html> kept;
  for (std::size_t i = 0; i < d.attachments.size(); ++i) {
    const auto& a = d.attachments[i];
    kept.push_back(fill(
        R"(<li><label><input type="checkbox" name="keep" value="{{i}}" checked> {{name}} <span class="size">({{type}}, {{size}})</span></label></li>)",
        {{"i", static_cast<unsigned long>(i)},
         {"name", a.filename.empty() ? "(no name)" : a.filename},
         {"type", a.content_type},
         {"size", format_size(a.bytes.size())}}));
  }
  Html kept_list;
  if (!kept.empty())
    kept_list = fill(R"(<ul class="attachments">{{items}}</ul>)", {{"items", join(kept)}});
  Html reply_guard;
  if (d.original_encrypted) {
    reply_guard = fill(
        R"(<input type="hidden" name="original_encrypted" value="1">
<p class="notice" role="note">This message answers an encrypted message, so it is encrypted by default.
<label><input type="checkbox" name="plain_ok" value="1"{{plain}}> Send it unencrypted all the same (any quoted text leaves in clear)</label></p>)",
        {{"plain", checked(d.unencrypted_reply_ok)}});
  }
  std::string references;
  for (const auto& r : d.references)
    references += (references.empty() ? "" : " ") + r;
  auto has_key = [&](mail::Technology t) {
    return outbox_.sender_key(d.from.address, t).ok() ? Html("") : Html(" (no key)");
  };
  // The Sign button looks different while the signing key is unlocked in this session
  // (DESIGN flow 4), as the Decrypt button does.
  bool sign_unlocked = false;
  if (auto key = outbox_.sender_key(d.from.address, d.technology)) {
    for (const auto& k : webflow::key_banner_state(ctx_.app, ctx_.live_session()))
      sign_unlocked = sign_unlocked || k.fingerprint == key->fingerprint;
  }
  p.main = fill(
      R"(<h1>{{heading}}</h1>
<form method="post" action="/compose" enctype="multipart/form-data" class="stacked compose">
{{csrf}}<input type="hidden" name="draft" value="{{draft}}">
<input type="hidden" name="in_reply_to" value="{{irt}}"><input type="hidden" name="references" value="{{refs}}">
<label for="from">From</label>
<select id="from" name="from">{{from}}</select>
<label for="to">To</label>
<input id="to" name="to" type="text" value="{{to}}" autocomplete="off" spellcheck="false">
<label for="cc">Cc</label>
<input id="cc" name="cc" type="text" value="{{cc}}" autocomplete="off" spellcheck="false">
<label for="subject">Subject</label>
<input id="subject" name="subject" type="text" value="{{subject}}">
<label for="body">Message</label>
<textarea id="body" name="body" rows="16">
{{body}}</textarea>
<fieldset><legend>Attachments</legend>
{{kept}}
<label for="attachment">Add files</label>
<input id="attachment" type="file" name="attachment" multiple>
<p class="hint">At most {{limit}} per file. The type is read from the file itself.</p>
</fieldset>
<fieldset><legend>Protection</legend>
<label><input type="checkbox" name="sign" value="1"{{sign}}> Sign</label>
<label><input type="checkbox" name="encrypt" value="1"{{encrypt}}> Encrypt to every recipient (and to me)</label>
<label><input type="radio" name="kind" value="openpgp"{{pgp}}> OpenPGP{{pgp_key}}</label>
<label><input type="radio" name="kind" value="smime"{{smime}}> S/MIME{{smime_key}}</label>
{{reply_guard}}
</fieldset>
<div class="actions">
<button type="submit" name="action" value="send">Send</button>
<button type="submit" name="action" value="sign" class="{{sign_class}}" data-key-state="{{sign_state}}">{{sign_label}}</button>
<button type="submit" name="action" value="encrypt">Encrypt…</button>
<button type="submit" name="action" value="save" class="secondary">Save draft</button>
</div>
</form>)",
      {{"heading", draft_id.empty() ? "New message" : "Draft"},
       {"csrf", csrf_field(ctx_.live_session().csrf_token)},
       {"draft", draft_id},
       {"irt", d.in_reply_to},
       {"refs", references},
       {"from", join(from_options)},
       {"to", mail::format_address_field(d.to)},
       {"cc", mail::format_address_field(d.cc)},
       {"subject", d.subject},
       {"body", d.body},
       {"kept", kept_list},
       {"limit", format_size(ctx_.app.config.attachment_max_bytes)},
       {"sign", checked(d.sign)},
       {"encrypt", checked(d.encrypt)},
       {"pgp", checked(d.technology == mail::Technology::openpgp)},
       {"smime", checked(d.technology == mail::Technology::smime)},
       {"pgp_key", has_key(mail::Technology::openpgp)},
       {"smime_key", has_key(mail::Technology::smime)},
       {"reply_guard", reply_guard},
       {"sign_class", sign_unlocked ? "sign unlocked" : "sign"},
       {"sign_state", sign_unlocked ? "unlocked" : "locked"},
       {"sign_label", sign_unlocked ? "Sign (key unlocked)…" : "Sign…"}});
  return finish(page_response(status, p));
}

Response ComposeSession::review(const mail::Prepared& prepared, const mail::Draft& d) {
  Page p = page("signed", "Review: " + (d.subject.empty() ? "(no subject)" : d.subject));
  std::vector<Html> badges;
  if (prepared.is_signed)
    badges.push_back(fill(
        R"(<li><span class="badge signed">Signed</span> {{kind}} with key <code>{{fpr}}</code> ({{micalg}}). The signature covers the text and attachments below, exactly.</li>)",
        {{"kind", technology_title(prepared.technology)},
         {"fpr", prepared.signer_fingerprint},
         {"micalg", prepared.micalg}}));
  if (prepared.is_encrypted) {
    std::string to;
    for (const auto& a : prepared.encrypted_to)
      to += (to.empty() ? "" : ", ") + a;
    badges.push_back(fill(
        R"(<li><span class="badge encrypted">Encrypted</span> {{kind}}, readable only by: {{to}}</li>)",
        {{"kind", technology_title(prepared.technology)}, {"to", to}}));
  }
  std::vector<Html> atts;
  for (const auto& a : d.attachments)
    atts.push_back(fill(
        R"(<li>{{name}} <span class="size">({{type}}, {{size}}, SHA-256 <code>{{sha}}</code>)</span></li>)",
        {{"name", a.filename.empty() ? "(no name)" : a.filename},
         {"type", a.content_type},
         {"size", format_size(a.bytes.size())},
         {"sha", util::sha256_hex(a.bytes)}}));
  Html att_list;
  if (!atts.empty())
    att_list = fill(R"(<h2>Attachments</h2><ul class="attachments">{{items}}</ul>)",
                    {{"items", join(atts)}});
  std::string raw = prepared.message.size() > kMaxRawShown
                        ? prepared.message.substr(0, kMaxRawShown) + "\n[... " +
                              format_size(prepared.message.size() - kMaxRawShown) + " more]"
                        : prepared.message;
  Html cc_row;
  if (!d.cc.empty())
    cc_row = fill(R"(<dt>Cc</dt><dd>{{cc}}</dd>)", {{"cc", address_list_text(d.cc)}});
  p.main = fill(
      R"(<h1>Review before sending</h1>
<ul class="protection">{{badges}}</ul>
<article class="message">
<dl class="headers"><dt>From</dt><dd>{{from}}</dd><dt>To</dt><dd>{{to}}</dd>{{cc}}<dt>Subject</dt><dd>{{subject}}</dd></dl>
<pre class="body signed-text">{{body}}</pre>
{{atts}}
</article>
<details><summary>The exact message that will be sent ({{size}})</summary><pre class="raw">{{raw}}</pre></details>
<form method="post" action="/compose" class="inline">
{{csrf}}<input type="hidden" name="draft" value="{{draft}}"><input type="hidden" name="digest" value="{{digest}}">
<button type="submit" name="action" value="send">Send</button>
</form>
<p><a href="{{edit}}">Edit</a> (the signature is dropped and made again). Nothing has been sent yet; the message waits in Drafts.</p>)",
      {{"badges", join(badges)},
       {"from", d.from.display()},
       {"to", address_list_text(d.to)},
       {"cc", cc_row},
       {"subject", d.subject},
       {"body", d.body},
       {"atts", att_list},
       {"size", format_size(prepared.message.size())},
       {"raw", raw},
       {"csrf", csrf_field(ctx_.live_session().csrf_token)},
       {"draft", prepared.draft_id},
       {"digest", prepared.digest},
       {"edit", url("/compose", {{"draft", prepared.draft_id}})}});
  return finish(page_response(200, p));
}

Response ComposeSession::unlock_page(int status, const keys::KeyInfo& key,
                                     const std::string& draft_id, AfterUnlock after,
                                     std::optional<Notice> notice) {
  Page p = page("unlock", "Unlock your key");
  p.notice = notice;
  Html confirm;
  if (ctx_.app.config.unlock_confirmation)
    confirm = Html(R"(<label for="confirm">Passphrase again</label>
<input id="confirm" name="confirm" type="password" autocomplete="off" required>)");
  p.main = fill(
      R"(<h1>Unlock your key</h1>
<p>{{why}} needs your {{kind}} key <code>{{fpr}}</code> ({{emails}}). Its passphrase unlocks it for this session only.</p>
<form method="post" action="/unlock" class="stacked unlock">
{{csrf}}<input type="hidden" name="draft" value="{{draft}}"><input type="hidden" name="then" value="{{then}}">
<label for="passphrase">Key passphrase</label>
<input id="passphrase" name="passphrase" type="password" autocomplete="off" required autofocus>
{{confirm}}
<div class="actions"><button type="submit">OK</button> <button type="reset" class="secondary">Clear</button></div>
</form>
<p>Your draft is kept in <a href="/inbox?folder=Drafts">Drafts</a>.</p>)",
      {{"why",
        after == AfterUnlock::sign ? "Signing this message" : "Opening this encrypted draft"},
       {"kind", key.type == keys::KeyType::smime ? "S/MIME" : "OpenPGP"},
       {"fpr", key.fingerprint},
       {"emails",
        [&] {
          std::string e;
          for (const auto& a : key.emails)
            e += (e.empty() ? "" : ", ") + a;
          return e;
        }()},
       {"csrf", csrf_field(ctx_.live_session().csrf_token)},
       {"draft", draft_id},
       {"then", after_unlock_name(after)},
       {"confirm", confirm}});
  return finish(page_response(status, p));
}

Response ComposeSession::resume(const std::string& draft_id, AfterUnlock after,
                                const keys::UnlockedKey& key) {
  auto draft = outbox_.load_draft(draft_id, &key);
  if (!draft)
    return finish(error_response(draft.code() == Errc::not_found ? 404 : 500,
                                 "The draft could not be opened: " + draft.error().message,
                                 ctx_.viewer()));
  if (after == AfterUnlock::edit || !draft->sign)
    return compose(200, *draft, draft_id, std::nullopt);
  auto prepared = outbox_.prepare(*draft, &key, draft_id);
  if (!prepared)
    return compose(400, *draft, draft_id,
                   Notice{Notice::Kind::error, "Not signed: " + prepared.error().message});
  return review(*prepared, *draft);
}

// ---- the /compose program

namespace {

// The draft the form describes. Attachments: those of the stored draft the form keeps
// (by index) and the new uploads. Errors are for the user.
struct FormResult {
  mail::Draft draft;
  std::optional<std::string> old_id;
  std::optional<Notice> warning;
};

Result<FormResult> draft_from_form(ComposeSession& cs) {
  Request& r = cs.ctx().request;
  const auto& user = cs.box().user();
  FormResult out;
  mail::Draft& d = out.draft;
  std::string from = r.field("from").value_or(user.email);
  bool own = std::any_of(user.emails.begin(), user.emails.end(),
                         [&](const std::string& e) { return lower(e) == lower(from); });
  if (!own)
    return make_error(Errc::invalid_argument, "You can only send from your own addresses.");
  d.from = {user.name, from};
  auto to = mail::parse_address_field(r.field("to").value_or(""));
  if (!to)
    return make_error(Errc::invalid_argument, "To: " + to.error().message);
  d.to = std::move(to).value();
  auto cc = mail::parse_address_field(r.field("cc").value_or(""));
  if (!cc)
    return make_error(Errc::invalid_argument, "Cc: " + cc.error().message);
  d.cc = std::move(cc).value();
  d.subject = r.field("subject").value_or("");
  d.body = mail::to_lf_line_ends(mail::to_crlf_line_ends(r.field("body").value_or("")));
  d.in_reply_to = r.field("in_reply_to").value_or("");
  std::string refs = r.field("references").value_or("");
  std::size_t pos = 0;
  while (pos < refs.size()) {
    std::size_t sp = refs.find(' ', pos);
    std::string id = refs.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
    if (!id.empty())
      d.references.push_back(id);
    pos = sp == std::string::npos ? refs.size() : sp + 1;
  }
  d.sign = flag_field(r, "sign");
  d.encrypt = flag_field(r, "encrypt");
  d.technology = technology_from(r.field("kind").value_or("")).value_or(mail::Technology::openpgp);
  d.original_encrypted = flag_field(r, "original_encrypted");
  d.unencrypted_reply_ok = flag_field(r, "plain_ok");

  // Attachments kept from the stored draft: read from the user's own Drafts, never
  // from anything the request names but the draft id.
  std::string old_id = r.field("draft").value_or("");
  std::vector<std::string> keep = r.fields("keep");
  if (!old_id.empty()) {
    if (!mail::valid_uid(old_id))
      return make_error(Errc::invalid_argument, "The draft id is not valid.");
    out.old_id = old_id;
  }
  if (out.old_id && !keep.empty()) {
    auto meta = cs.outbox().draft_meta(old_id);
    std::optional<mail::Draft> old;
    if (meta && !meta->is_protected) {
      auto loaded = cs.outbox().load_draft(old_id, nullptr);
      if (loaded)
        old = std::move(loaded).value();
    } else if (meta) {
      auto key = cs.draft_key(old_id);
      std::optional<keys::UnlockedKey> unlocked;
      if (key)
        unlocked = cs.access().from_grant(*key, nullptr);
      if (unlocked) {
        auto loaded = cs.outbox().load_draft(old_id, &*unlocked);
        if (loaded)
          old = std::move(loaded).value();
      }
    }
    if (!old) {
      // The earlier version stays: its attachments could not be read.
      out.old_id.reset();
      out.warning = Notice{Notice::Kind::error,
                           "The attachments of the earlier, encrypted version of this draft "
                           "could not be kept without unlocking the key; that version stays "
                           "in Drafts."};
    } else {
      for (const std::string& k : keep) {
        std::size_t i = 0;
        try {
          i = std::stoul(k);
        } catch (const std::exception&) {
          continue;
        }
        if (i < old->attachments.size())
          d.attachments.push_back(old->attachments[i]);
      }
    }
  }
  std::uint64_t limit = cs.ctx().app.config.attachment_max_bytes;
  std::uint64_t total = 0;
  for (const UploadedFile& f : r.files()) {
    if (f.field != "attachment" || (f.filename.empty() && f.data.empty()))
      continue;
    if (f.data.size() > limit)
      return make_error(Errc::invalid_argument, "The file \"" + mail::safe_filename(f.filename) +
                                                    "\" is larger than the limit of " +
                                                    format_size(limit) + ".");
    d.attachments.push_back(mail::make_attachment(f.filename, f.data));
  }
  for (const auto& a : d.attachments)
    total += a.bytes.size();
  if (d.attachments.size() > kMaxAttachments || total > mail::kMaxMessageBytes / 2)
    return make_error(Errc::invalid_argument, "Too many or too large attachments.");
  return out;
}

// The text of an encrypted original, decrypted with one of the user's keys that has a
// live grant in this session; nullopt if none opens it.
std::optional<std::string> decrypted_text(ComposeSession& cs, std::string_view raw,
                                          mail::Protection protection) {
  auto payload = mail::encrypted_payload(raw);
  if (!payload)
    return std::nullopt;
  keys::KeyType type =
      protection == mail::Protection::pgp_mime || protection == mail::Protection::pgp_inline
          ? keys::KeyType::openpgp
          : keys::KeyType::smime;
  auto mine = cs.access().keys().list(cs.box().user().login);
  if (!mine)
    return std::nullopt;
  for (const auto& key : *mine) {
    if (key.type != type)
      continue;
    auto unlocked = cs.access().from_grant(key, nullptr);
    if (!unlocked)
      continue;
    auto plain = cs.access().keys().decrypt(*unlocked, payload->bytes);
    if (!plain)
      continue;
    std::string inner(plain->plaintext.view());
    if (protection == mail::Protection::pgp_inline)
      return mail::to_lf_line_ends(inner);
    auto parsed = mail::parse_message("MIME-Version: 1.0\n" + inner);
    if (parsed && parsed->text_format == mail::BodyFormat::plain)
      return parsed->text;
    return std::string();
  }
  return std::nullopt;
}

enum class Derive { reply, forward };

// A new draft answering or forwarding the message uid in folder.
Result<mail::Draft> derived_draft(ComposeSession& cs, mail::Folder folder, const std::string& uid,
                                  Derive how, std::optional<Notice>& notice) {
  auto raw = cs.box().maildir().read(folder, uid);
  if (!raw)
    return raw.error();
  auto m = mail::parse_message(*raw);
  if (!m)
    return m.error();
  const auto& user = cs.box().user();
  mail::Draft d;
  d.from = {user.name, user.email};
  // Answer from the address the message came to, when it is one of ours.
  for (const auto* list : {&m->to, &m->cc})
    for (const auto& a : *list)
      for (const auto& e : user.emails)
        if (lower(a.address) == lower(e))
          d.from.address = e;
  bool encrypted = mail::is_encrypted(m->protection);
  std::string text = m->text_format == mail::BodyFormat::plain ? m->text : "";
  if (encrypted) {
    d.original_encrypted = true;
    d.encrypt = true;
    d.technology =
        m->protection == mail::Protection::pgp_mime || m->protection == mail::Protection::pgp_inline
            ? mail::Technology::openpgp
            : mail::Technology::smime;
    auto plain = decrypted_text(cs, *raw, m->protection);
    if (plain) {
      text = *plain;
    } else {
      text.clear();
      notice = Notice{Notice::Kind::info,
                      "The original is encrypted and your key is locked, so its text is not "
                      "quoted. Decrypt it first to quote it."};
    }
  } else if (cs.outbox().sender_key(d.from.address, mail::Technology::openpgp).ok()) {
    d.technology = mail::Technology::openpgp;
  } else if (cs.outbox().sender_key(d.from.address, mail::Technology::smime).ok()) {
    d.technology = mail::Technology::smime;
  }
  std::string when = m->date ? format_date(*m->date) : std::string("an unknown date");
  if (how == Derive::reply) {
    if (mail::validate_address(m->from.address).ok())
      d.to = {m->from};
    d.subject = with_prefix("Re:", m->subject);
    if (mail::valid_message_id(m->message_id)) {
      d.in_reply_to = m->message_id;
      d.references = {m->message_id};
    }
    if (!text.empty())
      d.body = "\n\nOn " + when + ", " + m->from.display() + " wrote:\n" + quote_lines(text);
  } else {
    d.subject = with_prefix("Fwd:", m->subject);
    if (!text.empty() || !encrypted)
      d.body = "\n\n---------- Forwarded message ----------\nFrom: " + m->from.display() +
               "\nDate: " + when + "\nSubject: " + m->subject +
               "\nTo: " + address_list_text(m->to) + "\n\n" + text;
  }
  return d;
}

mail::Draft new_draft(ComposeSession& cs) {
  const auto& user = cs.box().user();
  mail::Draft d;
  d.from = {user.name, user.email};
  if (!cs.outbox().sender_key(user.email, mail::Technology::openpgp).ok() &&
      cs.outbox().sender_key(user.email, mail::Technology::smime).ok())
    d.technology = mail::Technology::smime;
  if (auto to = cs.ctx().request.field("to")) {
    auto parsed = mail::parse_address_field(*to);
    if (parsed)
      d.to = std::move(parsed).value();
  }
  return d;
}

Response compose_get(ComposeSession& cs) {
  Request& r = cs.ctx().request;
  if (auto draft_id = r.field("draft")) {
    if (!mail::valid_uid(*draft_id))
      return error_response(404, "There is no such draft.", cs.ctx().viewer());
    auto meta = cs.outbox().draft_meta(*draft_id);
    if (!meta)
      return error_response(404, "There is no such draft; it may have been sent or deleted.",
                            cs.ctx().viewer());
    if (meta->is_protected) {
      auto key = cs.draft_key(*draft_id);
      if (!key)
        return error_response(404,
                              "This draft is encrypted and no key opens it: " + key.error().message,
                              cs.ctx().viewer());
      std::optional<Error> why;
      auto unlocked = cs.access().from_grant(*key, &why);
      if (!unlocked) {
        std::optional<Notice> n;
        if (why)
          n = Notice{Notice::Kind::info, why->message};
        return cs.unlock_page(200, *key, *draft_id, AfterUnlock::edit, n);
      }
      return cs.resume(*draft_id, AfterUnlock::edit, *unlocked);
    }
    auto d = cs.outbox().load_draft(*draft_id, nullptr);
    if (!d)
      return error_response(500, "The draft could not be opened: " + d.error().message,
                            cs.ctx().viewer());
    return cs.compose(200, *d, *draft_id, std::nullopt);
  }
  for (auto [param, how] :
       {std::pair{"reply", Derive::reply}, std::pair{"forward", Derive::forward}}) {
    auto uid = r.field(param);
    if (!uid)
      continue;
    auto folder = folder_param(r);
    if (!folder || !mail::valid_uid(*uid))
      return error_response(404, "There is no such message.", cs.ctx().viewer());
    std::optional<Notice> notice;
    auto d = derived_draft(cs, *folder, *uid, how, notice);
    if (!d)
      return error_response(404, "There is no such message; it may have been moved or deleted.",
                            cs.ctx().viewer());
    return cs.compose(200, *d, "", notice);
  }
  return cs.compose(200, new_draft(cs), "", std::nullopt);
}

Notice error_notice(const std::string& text) {
  return Notice{Notice::Kind::error, text};
}

// Signs and/or encrypts the stored draft, through the unlock page when signing needs
// a key that has no live grant.
Response prepare_stored(ComposeSession& cs, const mail::Draft& d, const std::string& id) {
  if (d.encrypt) {
    // A missing recipient key is said before the passphrase is asked for.
    auto keys = cs.outbox().encryption_keys(d);
    if (!keys)
      return cs.compose(400, d, id, error_notice("Not encrypted: " + keys.error().message));
  }
  std::optional<keys::UnlockedKey> signer;
  if (d.sign) {
    auto key = cs.outbox().sender_key(d.from.address, d.technology);
    if (!key)
      return cs.compose(400, d, id, error_notice("Cannot sign: " + key.error().message));
    std::optional<Error> why;
    signer = cs.access().from_grant(*key, &why);
    if (!signer) {
      std::optional<Notice> n;
      if (why)
        n = Notice{Notice::Kind::info, why->message};
      return cs.unlock_page(200, *key, id, AfterUnlock::sign, n);
    }
  }
  auto prepared = cs.outbox().prepare(d, signer ? &*signer : nullptr, id);
  if (!prepared)
    return cs.compose(400, d, id, error_notice("Not prepared: " + prepared.error().message));
  return cs.review(*prepared, d);
}

Response sent_page(ComposeSession& cs, const mail::SentMessage& sent) {
  Page p = cs.ctx().page("sent", "Sent", Nav::compose);
  // Mail to this server's users arrives at once; mail to other domains may wait in the
  // mail system's queue, and the page says so rather than promising delivery.
  std::string to, outside;
  auth::UserStore users(cs.ctx().app.db, *cs.ctx().app.clock);
  for (const auto& a : sent.recipients) {
    std::string& list = users.find_by_email(a) ? to : outside;
    list += (list.empty() ? "" : ", ") + a;
  }
  Html queued;
  if (!outside.empty())
    queued =
        fill(R"(<p class="sent-outside">Outside this server: {{outside}}. The mail system )"
             R"(delivers it, or keeps it in its queue until it can; that can take a while.</p>)",
             {{"outside", outside}});
  Html copy;
  if (sent.sent_copy_error)
    p.notice = error_notice("The message was sent, but its copy could not be stored in Sent: " +
                            sent.sent_copy_error->message);
  else
    copy = fill(R"(<p><a href="{{href}}">Open the copy in Sent</a></p>)",
                {{"href", url("/message", {{"folder", "Sent"}, {"id", sent.sent_id}})}});
  p.main = fill(
      R"(<h1>Message sent</h1>
{{local}}{{queued}}
{{copy}}
<p><a href="/compose">Write another message</a> · <a href="/inbox">Inbox</a></p>)",
      {{"local", to.empty() ? Html()
                            : fill(R"(<p class="sent-to">Handed to the mail system for )"
                                   R"({{to}} (on this server: it arrives within moments).</p>)",
                                   {{"to", to}})},
       {"queued", queued},
       {"copy", copy}});
  return page_response(200, p);
}

Response send_failed(ComposeSession& cs, const Error& e, const std::string& id) {
  std::string text = "The message was not sent: " + e.message + ". It is kept in Drafts.";
  auto meta = cs.outbox().draft_meta(id);
  if (meta && !meta->is_protected) {
    auto d = cs.outbox().load_draft(id, nullptr);
    if (d)
      return cs.compose(502, *d, id, error_notice(text));
  }
  Page p = cs.ctx().page("compose", "Not sent", Nav::compose);
  p.notice = error_notice(text);
  p.main = fill(R"(<h1>Not sent</h1><p><a href="{{href}}">Open the draft</a></p>)",
                {{"href", url("/compose", {{"draft", id}})}});
  return page_response(502, p);
}

Response compose_post(ComposeSession& cs) {
  Request& r = cs.ctx().request;
  std::string action = r.field("action").value_or("");
  if (action != "save" && action != "sign" && action != "encrypt" && action != "send")
    return error_response(400, "Unknown action.", cs.ctx().viewer());

  // Send from the review page: exactly the prepared message that was shown.
  if (action == "send" && r.field("digest")) {
    std::string id = r.field("draft").value_or("");
    if (!mail::valid_uid(id))
      return error_response(404, "There is no such draft.", cs.ctx().viewer());
    auto sent = cs.outbox().send(id, r.field("digest"));
    if (!sent) {
      if (sent.code() == Errc::not_found)
        return error_response(404, "There is no such draft; it may have been sent already.",
                              cs.ctx().viewer());
      if (sent.code() == Errc::conflict)
        return error_response(409, sent.error().message, cs.ctx().viewer());
      return send_failed(cs, sent.error(), id);
    }
    return sent_page(cs, *sent);
  }

  auto form = draft_from_form(cs);
  if (!form) {
    // Show the form again with what can be kept.
    mail::Draft d = new_draft(cs);
    if (auto to = mail::parse_address_field(r.field("to").value_or("")))
      d.to = std::move(to).value();
    if (auto cc = mail::parse_address_field(r.field("cc").value_or("")))
      d.cc = std::move(cc).value();
    d.subject = r.field("subject").value_or("");
    d.body = mail::to_lf_line_ends(mail::to_crlf_line_ends(r.field("body").value_or("")));
    return cs.compose(400, d, r.field("draft").value_or(""), error_notice(form.error().message));
  }
  mail::Draft d = std::move(form->draft);
  if (action == "sign")
    d.sign = true;
  if (action == "encrypt")
    d.encrypt = true;
  if (auto st = mail::validate_draft(d, mail::DraftCheck::to_save); !st)
    return cs.compose(400, d, form->old_id.value_or(""), error_notice(st.error().message));

  auto id = cs.outbox().save_draft(d, form->old_id);
  if (!id) {
    // An encrypted draft needs the sender's key: keep an unencrypted one instead? No:
    // say why and keep the form.
    return cs.compose(400, d, form->old_id.value_or(""),
                      error_notice("The draft was not saved: " + id.error().message));
  }
  if (action == "save") {
    std::optional<Notice> n = form->warning;
    if (!n)
      n = Notice{Notice::Kind::success,
                 d.encrypt ? "Draft saved, encrypted to your key." : "Draft saved."};
    return cs.compose(200, d, *id, n);
  }
  if (action == "send" && !d.sign && !d.encrypt) {
    if (auto st = mail::validate_draft(d, mail::DraftCheck::to_send); !st)
      return cs.compose(400, d, *id, error_notice(st.error().message));
    auto sent = cs.outbox().send(*id, std::nullopt);
    if (!sent) {
      if (sent.code() == Errc::invalid_argument)
        return cs.compose(400, d, *id, error_notice(sent.error().message));
      return send_failed(cs, sent.error(), *id);
    }
    return sent_page(cs, *sent);
  }
  // sign, encrypt, or send of a message to be signed or encrypted: review first.
  return prepare_stored(cs, d, *id);
}

}  // namespace

Response compose_handler(Context& ctx) {
  auto cs = ComposeSession::open(ctx);
  if (!cs)
    return error_response(404, cs.error().message, ctx.viewer());
  return ctx.request.is_post() ? compose_post(**cs) : compose_get(**cs);
}

Response unlock_for_draft(Context& ctx, const std::string& draft_id,
                          const util::SecretBuffer& passphrase,
                          const std::optional<util::SecretBuffer>& confirm) {
  auto cs = ComposeSession::open(ctx);
  if (!cs)
    return error_response(404, cs.error().message, ctx.viewer());
  ComposeSession& s = **cs;
  if (!mail::valid_uid(draft_id))
    return error_response(404, "There is no such draft.", ctx.viewer());
  AfterUnlock after =
      after_unlock_from(ctx.request.field("then").value_or("")).value_or(AfterUnlock::sign);
  auto key = s.draft_key(draft_id);
  if (!key) {
    int status = key.code() == Errc::not_found ? 404 : 500;
    return error_response(status, "The draft cannot be signed: " + key.error().message,
                          ctx.viewer());
  }
  if (ctx.app.config.unlock_confirmation && (!confirm || !confirm->equals(passphrase)))
    return s.unlock_page(400, *key, draft_id, after,
                         error_notice("The two passphrases differ. Type the same one twice."));
  auto unlocked = s.access().unlock(*key, passphrase);
  if (!unlocked) {
    switch (unlocked.code()) {
      case Errc::wrong_passphrase:
        return s.unlock_page(403, *key, draft_id, after,
                             error_notice("Wrong passphrase. The draft is kept; try again."));
      case Errc::locked_out:
        return s.unlock_page(429, *key, draft_id, after, error_notice(unlocked.error().message));
      case Errc::key_in_use: {
        Page p = ctx.page("in-use", "Key in use elsewhere", Nav::compose);
        auto other = s.access().live_elsewhere(*key);
        p.main = fill(R"(<h1>Key in use elsewhere</h1>
<p>Your key is unlocked in another session{{where}}. Lock it there, or stop its use there from a message's Decrypt button. Your draft is kept in <a href="/inbox?folder=Drafts">Drafts</a>.</p>)",
                      {{"where", other ? " (since " + format_date(other->created) + ", from " +
                                             other->client_addr + ")"
                                       : std::string()}});
        return page_response(409, p);
      }
      default:
        return s.unlock_page(
            403, *key, draft_id, after,
            error_notice("The key could not be unlocked: " + unlocked.error().message));
    }
  }
  return s.resume(draft_id, after, *unlocked);
}

}  // namespace wmk::cgi
