require ["include"];
if header :contains "from" "boss@example.com" {
    keep;
    return;
}
include :once :optional "optional_rules";
