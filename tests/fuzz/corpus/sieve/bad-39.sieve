require "encoded-character";
keep;
if header "a" "${unicode:D800}" {}