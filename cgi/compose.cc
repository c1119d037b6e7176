// /compose
//   GET   new message; draft=ID opens a stored draft (an encrypted one through the
//         unlock page); reply=ID or forward=ID (with folder) starts from a message:
//         a reply to an encrypted message is encrypted by default and quotes the
//         original only if this session's grant decrypts it.
//   POST  multipart/form-data: csrf, draft, from, to, cc, subject, body, attachment
//         files, keep (stored attachments to keep), sign, encrypt, kind
//         (openpgp|smime), original_encrypted, plain_ok, in_reply_to, references, and
//         action = save | sign | encrypt | send. Sign without a live grant → the unlock
//         page (the draft waits in Drafts). Sign/encrypt → the review page
//         (data-page="signed"); its Send posts action=send, draft and digest.
//         Send of a plain message → the sent page (data-page="sent"); a refused send
//         keeps the draft and says why (502). The database unreachable: 503, with
//         what was typed in a form that sends it again.
// The logic lives in cgi/common/compose_flow.cc (shared with /unlock) and core/mail.
#include "cgi/common/compose_flow.h"

int main() {
  using namespace wmk::cgi;
  Program program{.name = "compose",
                  .methods = {"GET", "POST"},
                  .access = Access::session,
                  .secrets = {.fields = {}, .cookies = {kGrantCookie}},
                  // What was typed survives a database outage (docs/admin-guide.md).
                  .kept_when_unavailable = {{"csrf"},
                                            {"draft"},
                                            {"from"},
                                            {"to", KeptField::Shown::line, "To"},
                                            {"cc", KeptField::Shown::line, "Cc"},
                                            {"subject", KeptField::Shown::line, "Subject"},
                                            {"body", KeptField::Shown::text, "Message"},
                                            {"in_reply_to"},
                                            {"references"},
                                            {"keep"},
                                            {"sign"},
                                            {"encrypt"},
                                            {"kind"},
                                            {"quote"},
                                            {"quote_signer"},
                                            {"plain_ok"},
                                            {"original_encrypted"},
                                            {"digest"},
                                            {"action"}}};
  return run(program, compose_handler);
}
