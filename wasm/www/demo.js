// The demo page: every keystroke validates the filter with usersync's engine, underlines the
// part in error and says why; the SCIM field also offers completions at the cursor (Tab or
// Enter takes the selected one, arrows move, a click takes one).
import init, { validateScimFilter, validateLdapFilter, completeScimFilter } from "../pkg/web/usersync.js";

await init();

/** Shows a validation result under an input and marks the error's span in its backdrop. */
function show(field, input, result) {
  const status = field.querySelector(".status");
  const marker = field.querySelector(".marker");
  const text = input.value;
  status.replaceChildren();
  if (text.trim() === "") {
    status.className = "status";
    marker.hidden = true;
    field.querySelector(".before").textContent = text;
    field.querySelector(".after").textContent = "";
    return;
  }
  if (result.valid) {
    status.className = "status valid";
    status.append("✓ valid");
    marker.hidden = true;
    field.querySelector(".before").textContent = text;
    field.querySelector(".after").textContent = "";
  } else {
    const { position, length, message } = result.error;
    status.className = "status invalid";
    status.append(`✗ ${message} (column ${position + 1})`);
    field.querySelector(".before").textContent = text.slice(0, position);
    marker.textContent = text.slice(position, position + length);
    marker.classList.toggle("empty", length === 0);
    marker.dataset.position = position;
    marker.dataset.length = length;
    marker.hidden = false;
    field.querySelector(".after").textContent = text.slice(position + length);
  }
  for (const w of result.warnings) {
    const line = document.createElement("span");
    line.className = "warning";
    line.textContent = `⚠ ${w.message} (column ${w.position + 1})`;
    status.append(line);
  }
  field.querySelector(".backdrop").scrollLeft = input.scrollLeft;
}

const scim = document.getElementById("scim");
const scimInput = document.getElementById("scim-input");
const scimType = document.getElementById("scim-type");
const list = document.getElementById("scim-completions");
let offered = { from: 0, to: 0, items: [] };
let selected = 0;

function refreshScim() {
  show(scim, scimInput, validateScimFilter(scimInput.value, { resourceType: scimType.value }));
  offered = completeScimFilter(scimInput.value, scimInput.selectionStart ?? scimInput.value.length, scimType.value);
  selected = 0;
  renderCompletions();
}

function renderCompletions() {
  list.replaceChildren(...offered.items.slice(0, 40).map((item, i) => {
    const li = document.createElement("li");
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", String(i === selected));
    li.dataset.kind = item.kind;
    li.title = item.documentation ?? item.detail;
    li.append(item.text);
    const detail = document.createElement("small");
    detail.textContent = item.detail;
    li.append(detail);
    li.addEventListener("mousedown", (e) => { e.preventDefault(); accept(i); });
    return li;
  }));
}

function accept(i) {
  const item = offered.items[i];
  if (!item) return false;
  const text = scimInput.value;
  // Attributes may go on with `.` or `[`; everything else is followed by a space.
  const insert = item.kind === "attribute" ? item.text : `${item.text} `;
  scimInput.value = text.slice(0, offered.from) + insert + text.slice(offered.to);
  const cursor = offered.from + insert.length;
  scimInput.setSelectionRange(cursor, cursor);
  refreshScim();
  return true;
}

scimInput.addEventListener("input", refreshScim);
scimInput.addEventListener("click", refreshScim);
scimInput.addEventListener("keyup", (e) => {
  if (["ArrowLeft", "ArrowRight", "Home", "End"].includes(e.key)) refreshScim();
});
scimInput.addEventListener("scroll", () => { scim.querySelector(".backdrop").scrollLeft = scimInput.scrollLeft; });
scimType.addEventListener("change", refreshScim);
scimInput.addEventListener("keydown", (e) => {
  if (offered.items.length === 0) return;
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    selected = (selected + (e.key === "ArrowDown" ? 1 : offered.items.length - 1)) % offered.items.length;
    renderCompletions();
    e.preventDefault();
  } else if ((e.key === "Tab" || e.key === "Enter") && accept(selected)) {
    e.preventDefault();
  }
});

const ldap = document.getElementById("ldap");
const ldapInput = document.getElementById("ldap-input");
ldapInput.addEventListener("input", () => show(ldap, ldapInput, validateLdapFilter(ldapInput.value)));
ldapInput.addEventListener("scroll", () => { ldap.querySelector(".backdrop").scrollLeft = ldapInput.scrollLeft; });

refreshScim();
document.body.dataset.ready = "true";
