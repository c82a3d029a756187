require "relational";
if header :value "xx" "a" "1" {}