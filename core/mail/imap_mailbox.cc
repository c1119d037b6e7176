// The IMAP backend of Mailbox: one ImapClient connection, logged in. Ids are
// "UIDVALIDITY.UID", so an id from before the server renumbered a folder is refused
// (Errc::not_found) instead of naming another message. The index's mark is UIDVALIDITY
// and HIGHESTMODSEQ: with CONDSTORE and QRESYNC an unchanged folder costs one SELECT,
// and a changed one the flags of what changed; without them, a listing of UIDs and flags.

#include <charconv>

#include "core/mail/mailbox.h"

namespace wmk::mail {
namespace {

constexpr std::size_t kFolderCount = std::size(kAllFolders);

std::size_t slot(Folder folder) {
  return static_cast<std::size_t>(folder);
}

struct ImapId {
  std::uint32_t uidvalidity = 0;
  std::uint32_t uid = 0;
};

std::string format_id(std::uint32_t uidvalidity, std::uint32_t uid) {
  return std::to_string(uidvalidity) + "." + std::to_string(uid);
}

bool parse_u32(std::string_view text, std::uint32_t& out) {
  if (text.empty() || text.size() > 10 || text[0] == '0')
    return false;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size() && out != 0;
}

std::optional<ImapId> parse_id(std::string_view id) {
  auto dot = id.find('.');
  if (dot == std::string_view::npos)
    return std::nullopt;
  ImapId out;
  if (!parse_u32(id.substr(0, dot), out.uidvalidity) || !parse_u32(id.substr(dot + 1), out.uid))
    return std::nullopt;
  return out;
}

class ImapMailbox final : public Mailbox {
 public:
  explicit ImapMailbox(ImapClient client) : client_(std::move(client)) {}
  ~ImapMailbox() override { client_.logout(); }

  const char* backend() const override { return "imap"; }

  Status ensure() override { return client_.ensure(); }

  Status alive() override {
    // The folders' UIDVALIDITY is asked again too: another client may have recreated one.
    for (auto& v : uidvalidity_)
      v.reset();
    return client_.noop();
  }

  Result<std::vector<MessageInfo>> list(Folder folder) override {
    auto v = uidvalidity(folder);
    if (!v)
      return v.error();
    auto listed = client_.list(folder);
    if (!listed)
      return listed.error();
    return infos(*v, *listed);
  }

  Result<MessageInfo> find(Folder folder, std::string_view id) override {
    auto uid = current_uid(folder, id);
    if (!uid)
      return uid.error();
    auto listed = client_.list(folder, {*uid});
    if (!listed)
      return listed.error();
    for (const ImapMessage& m : *listed) {
      if (m.uid == *uid) {
        ++messages_listed_;
        return info(uidvalidity_[slot(folder)].value_or(0), m);
      }
    }
    return missing(folder, id);
  }

  Result<std::string> read(Folder folder, std::string_view id) override {
    auto uid = current_uid(folder, id);
    if (!uid)
      return uid.error();
    auto bytes = client_.read(folder, *uid);
    if (!bytes)
      return bytes.error();
    ++messages_read_;
    return crlf_to_lf(*bytes);
  }

  Result<std::vector<MessagePrefix>> read_prefixes(Folder folder,
                                                   const std::vector<std::string>& ids,
                                                   std::size_t max_bytes) override {
    std::vector<MessagePrefix> out;
    auto v = uidvalidity(folder);
    if (!v)
      return v.error();
    std::vector<std::uint32_t> uids;
    for (const std::string& id : ids) {
      auto parsed = parse_id(id);
      if (parsed && parsed->uidvalidity == *v)
        uids.push_back(parsed->uid);
    }
    auto fetched = client_.read_prefixes(folder, uids, max_bytes);
    if (!fetched)
      return fetched.error();
    for (ImapHeader& h : *fetched) {
      ++messages_read_;
      out.push_back(MessagePrefix{format_id(*v, h.uid), crlf_to_lf(h.bytes)});
    }
    return out;
  }

  Status mark_seen(Folder folder, std::string_view id) override {
    return set_flag(folder, id, Flag::seen, true);
  }

  Status set_flag(Folder folder, std::string_view id, Flag flag, bool on) override {
    auto uid = current_uid(folder, id);
    if (!uid)
      return uid.error();
    return client_.set_flag(folder, *uid, flag, on);
  }

  Result<std::string> store(Folder folder, std::string_view message, Flags flags) override {
    std::string wire = lf_to_crlf(message);
    if (wire.size() > kMaxMessageBytes)
      return make_error(Errc::unsupported, "the message is larger than the " +
                                               std::to_string(kMaxMessageBytes) + " bytes allowed");
    auto uid = client_.append(folder, wire, flags);
    if (!uid)
      return uid.error();
    if (!uid->has_value())
      return make_error(Errc::unsupported,
                        "the IMAP server does not say the new message's UID (no UIDPLUS)");
    auto v = uidvalidity(folder);
    if (!v)
      return v.error();
    return format_id(*v, **uid);
  }

  Status remove(Folder folder, std::string_view id) override {
    auto uid = current_uid(folder, id);
    if (!uid)
      return uid.error();
    return client_.remove(folder, *uid);
  }

  Result<FolderChanges> changes(Folder folder, const std::optional<FolderMark>& last) override {
    FolderChanges out;
    auto state = client_.select(folder);
    if (!state) {
      if (state.code() == Errc::not_found)
        return out;  // complete and empty: a missing folder indexes as empty
      return state.error();
    }
    uidvalidity_[slot(folder)] = state->uidvalidity;
    FolderMark mark;
    mark.uidvalidity = state->uidvalidity;
    mark.highest_modseq = static_cast<std::int64_t>(state->highest_modseq.value_or(0));
    bool incremental = last && last->uidvalidity == mark.uidvalidity && last->highest_modseq > 0 &&
                       mark.highest_modseq > 0 && client_.has_condstore() && client_.has_qresync();
    if (incremental && last->highest_modseq == mark.highest_modseq) {
      out.kind = FolderChanges::Kind::unchanged;
      out.mark = mark;
      return out;
    }
    if (incremental) {
      auto changed =
          client_.changes_since(folder, static_cast<std::uint64_t>(last->highest_modseq));
      if (!changed)
        return changed.error();
      if (changed->uidvalidity == state->uidvalidity && changed->vanished_known) {
        // The flags came with the changes; size and arrival time only for those.
        std::vector<std::uint32_t> uids;
        for (const ImapMessage& m : changed->changed)
          uids.push_back(m.uid);
        auto listed = client_.list(folder, uids);
        if (!listed)
          return listed.error();
        out.kind = FolderChanges::Kind::delta;
        out.messages = infos(state->uidvalidity, *listed);
        for (std::uint32_t uid : changed->vanished)
          out.vanished.push_back(format_id(state->uidvalidity, uid));
        mark.highest_modseq = static_cast<std::int64_t>(changed->highest_modseq);
        out.mark = mark;
        return out;
      }
    }
    // No usable mark: every UID with its flags (no bytes), and the index compares.
    auto listed = client_.list(folder);
    if (!listed)
      return listed.error();
    out.kind = FolderChanges::Kind::complete;
    out.messages = infos(state->uidvalidity, *listed);
    out.mark = mark;
    return out;
  }

 private:
  static MessageInfo info(std::uint32_t uidvalidity, const ImapMessage& m) {
    return MessageInfo{
        format_id(uidvalidity, m.uid), m.flags, m.size, m.internal_date, "imap", m.flags.letters()};
  }
  std::vector<MessageInfo> infos(std::uint32_t uidvalidity,
                                 const std::vector<ImapMessage>& messages) {
    messages_listed_ += messages.size();
    std::vector<MessageInfo> out;
    out.reserve(messages.size());
    for (const ImapMessage& m : messages)
      out.push_back(info(uidvalidity, m));
    return out;
  }

  static Error missing(Folder folder, std::string_view id) {
    return Error{Errc::not_found, "no message " + std::string(id) + " in " + folder_name(folder) +
                                      " on the IMAP server"};
  }

  // The folder's UIDVALIDITY in this connection (a SELECT the first time).
  Result<std::uint32_t> uidvalidity(Folder folder) {
    if (auto v = uidvalidity_[slot(folder)])
      return *v;
    auto state = client_.select(folder);
    if (!state)
      return state.error();
    uidvalidity_[slot(folder)] = state->uidvalidity;
    return state->uidvalidity;
  }

  // The UID an id names now; Errc::invalid_argument if it is no IMAP id,
  // Errc::not_found if it is from another UIDVALIDITY.
  Result<std::uint32_t> current_uid(Folder folder, std::string_view id) {
    auto parsed = parse_id(id);
    if (!parsed)
      return make_error(Errc::invalid_argument, "not a message id");
    auto v = uidvalidity(folder);
    if (!v)
      return v.error();
    if (parsed->uidvalidity != *v)
      return missing(folder, id);
    return parsed->uid;
  }

  ImapClient client_;
  std::optional<std::uint32_t> uidvalidity_[kFolderCount];
};

}  // namespace

std::string crlf_to_lf(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n')
      continue;
    out += bytes[i];
  }
  return out;
}

std::string lf_to_crlf(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 32);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '\n' && (i == 0 || bytes[i - 1] != '\r'))
      out += '\r';
    out += bytes[i];
  }
  return out;
}

Result<std::unique_ptr<Mailbox>> imap_mailbox(const ImapServer& server, std::string_view login,
                                              const util::SecretBuffer& password) {
  auto client = ImapClient::connect(server);
  if (!client)
    return client.error();
  WMK_TRY(client->login(login, password));
  return std::unique_ptr<Mailbox>(std::make_unique<ImapMailbox>(std::move(client).value()));
}

}  // namespace wmk::mail
