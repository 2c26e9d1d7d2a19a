"use strict";
const todos = [];
const list = document.getElementById("todo-list");
const input = document.getElementById("new-todo");

function filter() {
  return location.hash.replace(/^#\//, "") || "all";
}

function render() {
  const shown = todos.filter((t) => filter() === "all"
    || (filter() === "active" ? !t.done : t.done));
  list.replaceChildren(...shown.map((todo) => {
    const li = document.createElement("li");
    li.classList.toggle("done", todo.done);
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = todo.done;
    box.setAttribute("aria-label", "Done: " + todo.title);
    box.addEventListener("change", () => { todo.done = box.checked; render(); });
    const label = document.createElement("label");
    label.textContent = todo.title;
    const remove = document.createElement("button");
    remove.className = "remove";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => { todos.splice(todos.indexOf(todo), 1); render(); });
    li.append(box, label, remove);
    return li;
  }));
  const left = todos.filter((t) => !t.done).length;
  document.getElementById("count").textContent = `${left} ${left === 1 ? "item" : "items"} left`;
  document.getElementById("empty").hidden = todos.length > 0;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("selected", a.dataset.filter === filter());
  }
}

document.getElementById("add-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const title = input.value.trim();
  if (title) {
    todos.push({ title, done: false });
    input.value = "";
  }
  input.focus();
  render();
});
window.addEventListener("hashchange", render);
render();
