require ["fileinto", "reject", "mailbox"];
if mailboxexists "Fight Club" {
    fileinto "Fight Club";
} else {
    reject "I am not a member of Fight Club";
}
