#include "core/mail/outgoing.h"

#include <algorithm>
#include <cctype>

#include "core/util/ascii.h"
#include "core/util/encoding.h"

namespace wmk::mail {

namespace {

// raw's header block without its Content-* headers and without the blank line that
// ends it: the message headers to put in front of another entity.
std::string headers_without_content(std::string_view raw) {
  std::string out;
  std::size_t pos = 0;
  bool skipping = false;
  while (pos < raw.size()) {
    std::size_t nl = raw.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? raw.size() : nl + 1;
    std::string_view line = raw.substr(pos, end - pos);
    if (line == "\n" || line == "\r\n")
      break;
    if (line.front() == ' ' || line.front() == '\t') {
      if (!skipping)
        out += line;
    } else {
      skipping =
          util::ascii_lower(line.substr(0, std::min<std::size_t>(line.size(), 8))) == "content-";
      if (!skipping)
        out += line;
    }
    pos = end;
  }
  return to_lf_line_ends(out);
}

// The reply rule: a reply to an encrypted message may quote decrypted text, so it
// leaves unencrypted only when the user said so.
Status check_reply_rule(const Draft& draft) {
  if (draft.original_encrypted && !draft.encrypt && !draft.unencrypted_reply_ok)
    return make_error(Errc::invalid_argument,
                      "this message answers an encrypted one: encrypt it, or confirm that it "
                      "may be sent unencrypted");
  return {};
}

// ciphertext (armored OpenPGP, or S/MIME DER) as the MIME entity that carries it.
// Errc::invalid_argument when an OpenPGP ciphertext is not an armored PGP MESSAGE.
Result<std::string> encrypted_entity(Technology technology, std::string_view ciphertext) {
  if (technology == Technology::openpgp)
    return pgp_encrypted_entity(ciphertext);
  return smime_encrypted_entity(ciphertext, SmimeEnvelope::auth_enveloped);
}

}  // namespace

const char* missing_key_reason_name(MissingKeyReason reason) {
  switch (reason) {
    case MissingKeyReason::none:
      return "none";
    case MissingKeyReason::revoked:
      return "revoked";
    case MissingKeyReason::expired:
      return "expired";
    case MissingKeyReason::unusable:
      break;
  }
  return "unusable";
}

keys::KeyType key_type_of(Technology t) {
  return t == Technology::smime ? keys::KeyType::smime : keys::KeyType::openpgp;
}

Outbox::Outbox(Mailbox& mailbox, keys::KeyStore& keys, Transport& transport,
               const util::Clock& clock)
    : mailbox_(mailbox), keys_(keys), transport_(transport), clock_(clock) {}

Result<keys::KeyInfo> Outbox::sender_key(const std::string& address, Technology technology) {
  auto key = keys_.find_default(address, key_type_of(technology));
  if (!key) {
    if (key.code() == Errc::not_found)
      return make_error(Errc::not_found,
                        std::string("there is no ") +
                            (technology == Technology::smime ? "S/MIME" : "OpenPGP") + " key for " +
                            address);
    return key.error();
  }
  return key;
}

void Outbox::use_contacts(RecipientKeys lookup) {
  contacts_ = std::move(lookup);
}

Result<Outbox::KeyOrMissing> Outbox::recipient_key(const std::string& address,
                                                   Technology technology, KeyData want) {
  const char* what = technology == Technology::smime ? "S/MIME certificate" : "OpenPGP key";
  MissingKey missing{address, MissingKeyReason::none, std::string("no ") + what + " is known",
                     false};
  auto key = keys_.find_default(address, key_type_of(technology));
  if (!key) {
    if (key.code() != Errc::not_found)
      return key.error();
    if (contacts_) {
      auto bound = contacts_(address, key_type_of(technology));
      if (bound)
        return KeyOrMissing(std::move(bound).value());
      if (bound.code() == Errc::revoked || bound.code() == Errc::expired ||
          bound.code() == Errc::invalid_argument) {
        missing.reason = bound.code() == Errc::revoked   ? MissingKeyReason::revoked
                         : bound.code() == Errc::expired ? MissingKeyReason::expired
                                                         : MissingKeyReason::unusable;
        missing.words = bound.error().message;
      } else if (bound.code() != Errc::not_found) {
        return bound.error();
      }
    }
    return KeyOrMissing(std::move(missing));
  }
  if (key->revoked) {
    missing.reason = MissingKeyReason::revoked;
    missing.words = "the key " + key->fingerprint + " was revoked";
    return KeyOrMissing(std::move(missing));
  }
  if (want == KeyData::not_needed)
    return KeyOrMissing(std::string());
  auto pub = keys_.export_public(*key);
  if (!pub)
    return pub.error();
  return KeyOrMissing(std::move(pub).value());
}

namespace {

// The recipients of draft, then its sender if not among them.
std::vector<std::string> recipients_and_sender(const Draft& draft) {
  std::vector<std::string> addresses = recipients(draft);
  std::string sender = util::ascii_lower(draft.from.address);
  bool sender_listed = false;
  for (const std::string& a : addresses)
    sender_listed = sender_listed || util::ascii_lower(a) == sender;
  if (!sender_listed)
    addresses.push_back(draft.from.address);
  return addresses;
}

}  // namespace

Result<std::vector<MissingKey>> Outbox::missing_keys(const Draft& draft) {
  std::vector<MissingKey> out;
  std::string sender = util::ascii_lower(draft.from.address);
  for (const std::string& address : recipients_and_sender(draft)) {
    auto key = recipient_key(address, draft.technology, KeyData::not_needed);
    if (!key)
      return key.error();
    if (auto* m = std::get_if<MissingKey>(&*key)) {
      m->is_sender = util::ascii_lower(address) == sender;
      out.push_back(std::move(*m));
    }
  }
  return out;
}

Result<std::vector<std::string>> Outbox::encryption_keys(const Draft& draft) {
  std::vector<std::string> keys;
  std::vector<std::string> missing;
  for (const std::string& address : recipients_and_sender(draft)) {
    auto key = recipient_key(address, draft.technology, KeyData::needed);
    if (!key)
      return key.error();
    if (auto* m = std::get_if<MissingKey>(&*key)) {
      missing.push_back(m->reason == MissingKeyReason::none ? address
                                                            : address + " (" + m->words + ")");
      continue;
    }
    keys.push_back(std::get<std::string>(std::move(*key)));
  }
  if (!missing.empty()) {
    std::string list;
    for (const std::string& m : missing)
      list += (list.empty() ? "" : ", ") + m;
    return make_error(
        Errc::not_found,
        std::string("cannot encrypt: no ") +
            (draft.technology == Technology::smime ? "S/MIME certificate" : "OpenPGP public key") +
            " is known for " + list);
  }
  return keys;
}

Result<std::optional<std::string>> Outbox::autocrypt_value(const std::string& address) {
  if (autocrypt_ == AutocryptHeader::off)
    return std::optional<std::string>();
  auto key = keys_.find_default(address, keys::KeyType::openpgp);
  if (!key) {
    if (key.code() == Errc::not_found)
      return std::optional<std::string>();
    return key.error();
  }
  auto keydata = keys_.export_autocrypt(*key, address);
  if (!keydata) {
    // A revoked or expired key, or one without a user id for the address, is not
    // offered to anyone.
    Errc c = keydata.code();
    if (c == Errc::revoked || c == Errc::expired || c == Errc::not_found ||
        c == Errc::invalid_argument)
      return std::optional<std::string>();
    return keydata.error();
  }
  return std::optional<std::string>(
      autocrypt_header_value(util::ascii_lower(address), *keydata, false));
}

Result<HeaderFields> Outbox::outgoing_fields(const std::string& address) {
  HeaderFields fields{clock_.now(), make_message_id(address), ""};
  auto autocrypt = autocrypt_value(address);
  if (!autocrypt)
    return autocrypt.error();
  if (*autocrypt)
    fields.autocrypt = std::move(**autocrypt);
  return fields;
}

Result<std::string> Outbox::store_replacing(std::string_view message,
                                            const std::optional<std::string>& replace_id) {
  WMK_TRY(mailbox_.ensure());
  auto id = mailbox_.store(Folder::drafts, message, Flags{Flag::draft, Flag::seen});
  if (!id)
    return id.error();
  if (replace_id && *replace_id != *id && valid_uid(*replace_id))
    (void)mailbox_.remove(Folder::drafts, *replace_id);  // not_found: already gone
  return id;
}

Result<std::string> Outbox::protect_for_sender(const Draft& draft, std::string_view inner,
                                               const DraftMeta& meta, const HeaderFields& fields) {
  auto key = sender_key(draft.from.address, draft.technology);
  if (!key)
    return make_error(key.code(), "cannot keep the draft encrypted: " + key.error().message);
  auto pub = keys_.export_public(*key);
  if (!pub)
    return pub.error();
  auto ciphertext = keys_.encrypt(key_type_of(draft.technology), {*pub}, inner);
  if (!ciphertext)
    return ciphertext.error();
  auto entity = encrypted_entity(draft.technology, *ciphertext);
  if (!entity)
    return entity.error();
  auto headers = message_headers(draft, fields);
  if (!headers)
    return headers.error();
  return assemble_message(draft_header_line(meta) + *headers, *entity);
}

Result<std::string> Outbox::save_draft(const Draft& draft,
                                       const std::optional<std::string>& replace_id) {
  WMK_TRY(validate_draft(draft, DraftCheck::to_save));
  HeaderFields fields{clock_.now(), make_message_id(draft.from.address), ""};
  auto plain = draft_message(draft, fields);
  if (!plain)
    return plain.error();
  // Decrypted text is never stored in the clear, whatever the user chose for sending.
  if (!draft.encrypt && draft.decrypted_quote == DecryptedQuote::none)
    return store_replacing(*plain, replace_id);
  DraftMeta meta = meta_of(draft, DraftState::editing);
  meta.is_protected = true;
  auto message = protect_for_sender(draft, *plain, meta, fields);
  if (!message)
    return message.error();
  return store_replacing(*message, replace_id);
}

Result<DraftMeta> Outbox::draft_meta(const std::string& id) {
  auto raw = mailbox_.read(Folder::drafts, id);
  if (!raw)
    return raw.error();
  return read_draft_meta(*raw);
}

Result<Address> Outbox::draft_sender(const std::string& id) {
  auto raw = mailbox_.read(Folder::drafts, id);
  if (!raw)
    return raw.error();
  auto parsed = parse_message(*raw, ParseDepth::structure);
  if (!parsed)
    return parsed.error();
  return parsed->from;
}

Result<Draft> Outbox::load_draft(const std::string& id, const keys::UnlockedKey* key) {
  auto raw = mailbox_.read(Folder::drafts, id);
  if (!raw)
    return raw.error();
  auto meta = read_draft_meta(*raw);
  if (!meta)
    return meta.error();
  if (!meta->is_protected)
    return parse_draft(*raw);
  if (key == nullptr)
    return make_error(Errc::invalid_argument, "the draft is encrypted: unlock the key first");
  auto payload = encrypted_payload(*raw);
  if (!payload)
    return make_error(Errc::corrupt, "the encrypted draft has no encrypted part");
  auto plain = keys_.decrypt(*key, payload->bytes);
  if (!plain)
    return plain.error();
  std::string inner(plain->plaintext.view());
  Result<Draft> draft = meta->state == DraftState::editing
                            ? parse_draft(inner)
                            : parse_draft(headers_without_content(*raw) + to_lf_line_ends(inner));
  if (!draft)
    return draft.error();
  draft->sign = meta->sign;
  draft->encrypt = meta->encrypt;
  draft->technology = meta->technology;
  draft->original_encrypted = meta->original_encrypted;
  draft->unencrypted_reply_ok = meta->unencrypted_reply_ok;
  draft->decrypted_quote = meta->decrypted_quote;
  draft->quote_signer = meta->quote_signer;
  return draft;
}

Result<Prepared> Outbox::prepare(const Draft& draft, const keys::UnlockedKey* signer,
                                 const std::optional<std::string>& replace_id) {
  if (!draft.sign && !draft.encrypt)
    return make_error(Errc::invalid_argument, "the message is to be neither signed nor encrypted");
  WMK_TRY(validate_draft(draft, DraftCheck::to_send));
  WMK_TRY(check_reply_rule(draft));
  // A prepared message waits in Drafts as it will be sent: signed only, it would be
  // stored in the clear.
  if (draft.decrypted_quote != DecryptedQuote::none && !draft.encrypt)
    return make_error(Errc::invalid_argument,
                      "this message quotes decrypted text, so it is signed only together with "
                      "encryption; to send it unencrypted, send it unsigned");
  if (draft.sign) {
    if (signer == nullptr)
      return make_error(Errc::invalid_argument, "signing needs the sender's unlocked key");
    const keys::KeyInfo& info = signer->info();
    bool serves = std::find(info.emails.begin(), info.emails.end(),
                            util::ascii_lower(draft.from.address)) != info.emails.end();
    if (info.type != key_type_of(draft.technology) || !serves)
      return make_error(Errc::invalid_argument, "the unlocked key " + info.fingerprint +
                                                    " does not sign for " + draft.from.address +
                                                    " with " + technology_name(draft.technology));
  }
  // Every recipient key is found before anything is signed or stored.
  std::vector<std::string> public_keys;
  if (draft.encrypt) {
    auto found = encryption_keys(draft);
    if (!found)
      return found.error();
    public_keys = std::move(found).value();
  }

  auto fields = outgoing_fields(draft.from.address);
  if (!fields)
    return fields.error();
  auto headers = message_headers(draft, *fields);
  if (!headers)
    return headers.error();
  auto content = content_entity(draft);
  if (!content)
    return content.error();

  Prepared p;
  p.technology = draft.technology;
  std::string entity = *content;
  if (draft.sign) {
    auto sig = keys_.sign(*signer, *content);
    if (!sig)
      return sig.error();
    auto s = signed_entity(
        *content,
        draft.technology == Technology::openpgp ? SignatureFormat::openpgp : SignatureFormat::smime,
        sig->signature, sig->micalg);
    if (!s)
      return s.error();
    entity = std::move(s).value();
    p.is_signed = true;
    p.signed_content = *content;
    p.signer_fingerprint = signer->info().fingerprint;
    p.micalg = sig->micalg;
  }
  if (draft.encrypt) {
    auto ciphertext = keys_.encrypt(key_type_of(draft.technology), public_keys, entity);
    if (!ciphertext)
      return ciphertext.error();
    auto encrypted = encrypted_entity(draft.technology, *ciphertext);
    if (!encrypted)
      return encrypted.error();
    entity = std::move(encrypted).value();
    p.is_encrypted = true;
    p.encrypted_to = recipients(draft);
    std::string sender = util::ascii_lower(draft.from.address);
    if (std::none_of(p.encrypted_to.begin(), p.encrypted_to.end(),
                     [&](const std::string& a) { return util::ascii_lower(a) == sender; }))
      p.encrypted_to.push_back(draft.from.address);
  }
  p.message = assemble_message(*headers, entity);
  p.digest = util::sha256_hex(p.message);
  DraftMeta meta = meta_of(draft, DraftState::prepared);
  meta.is_protected = draft.encrypt;
  auto id = store_replacing(to_lf_line_ends(draft_header_line(meta)) + p.message, replace_id);
  if (!id)
    return id.error();
  p.draft_id = std::move(id).value();
  return p;
}

Result<keys::KeyInfo> Outbox::draft_key(const std::string& id) {
  auto meta = draft_meta(id);
  if (!meta)
    return meta.error();
  auto from = draft_sender(id);
  if (!from)
    return from.error();
  return sender_key(from->address, meta->technology);
}

Result<std::string> Outbox::sealed_copy(const Draft& draft, std::string_view message) {
  auto key = sender_key(draft.from.address, draft.technology);
  if (!key)
    return key.error();
  auto pub = keys_.export_public(*key);
  if (!pub)
    return pub.error();
  auto ciphertext =
      keys_.encrypt(key_type_of(draft.technology), {*pub}, to_crlf_line_ends(message));
  if (!ciphertext)
    return ciphertext.error();
  auto entity = encrypted_entity(draft.technology, *ciphertext);
  if (!entity)
    return entity.error();
  auto headers = message_headers(draft, {clock_.now(), make_message_id(draft.from.address), ""});
  if (!headers)
    return headers.error();
  return assemble_message(*headers, *entity);
}

Result<SentMessage> Outbox::send(const std::string& id, const std::optional<std::string>& digest,
                                 const keys::UnlockedKey* key) {
  auto raw = mailbox_.read(Folder::drafts, id);
  if (!raw)
    return raw.error();
  // The draft is flagged P (passed) before it is handed to sendmail and the flag goes
  // only with the draft, or when sendmail refused it. Still there: a Send of it was
  // killed while or after handing it over, and it may have gone out. Sent at most once.
  if (auto entry = mailbox_.find(Folder::drafts, id); entry && entry->flags.has(Flag::passed))
    return make_error(Errc::conflict,
                      "an earlier Send of this message was interrupted while it was being "
                      "handed to the mail system, so it may have gone out already; it is not "
                      "sent a second time. It stays in Drafts: look in Sent, and to send it "
                      "anyway, open the draft and send it again from a new review");
  auto meta = read_draft_meta(*raw);
  if (!meta)
    return meta.error();
  std::string message;
  std::optional<Draft> quoting;  // a clear message holding decrypted text
  if (meta->state == DraftState::prepared) {
    message = strip_draft_header(*raw);
    if (!digest || util::sha256_hex(message) != *digest)
      return make_error(Errc::conflict,
                        "the prepared message changed since it was shown; review it again");
  } else {
    if (meta->sign || meta->encrypt ||
        (meta->is_protected && meta->decrypted_quote == DecryptedQuote::none))
      return make_error(Errc::invalid_argument,
                        "the message is to be signed or encrypted: prepare it first");
    auto draft = meta->is_protected ? load_draft(id, key) : parse_draft(*raw);
    if (!draft)
      return draft.error();
    if (draft->decrypted_quote != DecryptedQuote::none)
      quoting = *draft;
    WMK_TRY(validate_draft(*draft, DraftCheck::to_send));
    WMK_TRY(check_reply_rule(*draft));
    auto fields = outgoing_fields(draft->from.address);
    if (!fields)
      return fields.error();
    auto built = build_message(*draft, *fields);
    if (!built)
      return built.error();
    message = std::move(built).value();
  }
  auto parsed = parse_message(message, ParseDepth::structure);
  if (!parsed)
    return parsed.error();
  Draft envelope;
  envelope.from = parsed->from;
  envelope.to = parsed->to;
  envelope.cc = parsed->cc;
  WMK_TRY(validate_draft(envelope, DraftCheck::to_send));

  SentMessage sent;
  sent.message_id = parsed->message_id;
  sent.recipients = recipients(envelope);
  WMK_TRY(mailbox_.set_flag(Folder::drafts, id, Flag::passed, true));
  if (auto handed = transport_.send(envelope.from.address, sent.recipients, message); !handed) {
    (void)mailbox_.set_flag(Folder::drafts, id, Flag::passed, false);  // refused: not sent
    return handed.error();
  }

  // The copy of a clear message that quotes decrypted text is kept encrypted to the
  // sender, as its draft was.
  std::string copy_text = message;
  if (quoting) {
    auto sealed = sealed_copy(*quoting, message);
    if (!sealed) {
      sent.sent_copy_error = sealed.error();
      (void)mailbox_.remove(Folder::drafts, id);
      return sent;
    }
    copy_text = std::move(sealed).value();
  }
  if (auto st = mailbox_.ensure(); !st) {
    sent.sent_copy_error = st.error();
  } else if (auto copy = mailbox_.store(Folder::sent, copy_text, Flags{Flag::seen}); !copy) {
    sent.sent_copy_error = copy.error();
  } else {
    sent.sent_id = std::move(copy).value();
  }
  (void)mailbox_.remove(Folder::drafts, id);
  return sent;
}

}  // namespace wmk::mail
