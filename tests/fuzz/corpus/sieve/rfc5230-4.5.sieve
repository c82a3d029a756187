require "vacation";
vacation :days 7 :from "hemingway@example.com" :subject "Gone fishing"
  :handle "ran-away" "Gone fishing";
