require ["fileinto", "imap4flags", "variables"];
if size :over 1M {
    addflag "MyFlags" "Big";
    if header :is "From" "boss@company.example.com" {
        # The message will be marked as "\Flagged Big" when filed into
        addflag "MyFlags" "\\Flagged";
    }
    fileinto :flags "${MyFlags}" "Big messages";
}
if header :is "From" "grandma@example.net" {
    addflag "MyFlags" ["\\Answered", "$MDNSent"];
    fileinto :flags "${MyFlags}" "GrandMa";
}
if header :is "Sender" "owner-ietf-mta-filters@example.net" {
    set "MyFlags" "\\Flagged $Work";
    keep :flags "${MyFlags}";
}
elsif anyof (address :domain :is ["From", "To"] "company.example.com") {
    keep :flags "${MyFlags}"; # keep in "In" folder
}
elsif anyof (not address :all :contains
        ["To", "Cc"] "me@company.example.com",
        header :matches "subject"
        ["*make*money*fast*", "*university*dipl*mas*"]) {
    removeflag "MyFlags" "\\Flagged";
    fileinto :flags "${MyFlags}" "spam";
}
else {
    fileinto :flags "${MyFlags}" "personal";
}
